"""The numba per-row derivative and z-score against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from contrastive_signals.signal import rowwise


def _rows(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("length", [2, 3, 1001])
def test_gradient_equals_np_gradient(length):
    rows = _rows((37, length))
    got = rowwise.gradient_rows(rows, 250.0, np.float64)
    np.testing.assert_allclose(got, np.gradient(rows, 1 / 250.0, axis=-1), rtol=1e-12, atol=1e-9)


def test_gradient_of_a_line_is_its_slope():
    t = np.arange(500) / 100.0
    rows = np.stack([3.0 * t + 1.0, -0.5 * t])
    got = rowwise.gradient_rows(rows, 100.0, np.float64)
    np.testing.assert_allclose(got, [[3.0] * 500, [-0.5] * 500], rtol=1e-10)


def test_zscore_equals_numpy_even_with_a_large_offset():
    # A mean of 1e6 with unit spread: a one-pass sum of squares would lose the spread.
    rows = _rows((20, 3000)) + 1e6
    got = rowwise.zscore_rows(rows, 1e-8, np.float64)
    ref = (rows - rows.mean(-1, keepdims=True)) / (rows.std(-1, keepdims=True) + 1e-8)
    # Summation order differs from numpy's pairwise sum: ~1e-15 of the 1e6 offset.
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got.mean(-1), 0, atol=1e-8)
    np.testing.assert_allclose(got.std(-1), 1, rtol=1e-7)


def test_zscore_of_flat_rows_is_zero_and_finite():
    got = rowwise.zscore_rows(np.full((3, 50), 7.0), 1e-8, np.float64)
    np.testing.assert_array_equal(got, 0.0)


@pytest.mark.parametrize("kernel", ["gradient", "zscore"])
def test_float32_and_non_contiguous_input(kernel):
    base = _rows((40, 600), dtype=np.float32)
    rows = base[::3, ::2]
    before = base.copy()
    if kernel == "gradient":
        got = rowwise.gradient_rows(rows, 10.0, np.float32)
        ref = np.gradient(rows.astype(np.float64), 0.1, axis=-1)
    else:
        got = rowwise.zscore_rows(rows, 1e-8, np.float32)
        r64 = rows.astype(np.float64)
        ref = (r64 - r64.mean(-1, keepdims=True)) / (r64.std(-1, keepdims=True) + 1e-8)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(base, before)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
