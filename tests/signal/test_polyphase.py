"""Batched polyphase resampling against scipy.signal.resample_poly, row by row."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from contrastive_signals.signal import polyphase
from contrastive_signals.signal.polyphase import resample_poly_rows

# (up, down) pairs: common rates, their inverses, long ratios, non-reduced pairs and
# a plain copy (up == down).
FACTORS = [
    (2, 5), (5, 2), (1, 2), (3, 1), (1, 1), (160, 147), (147, 160), (5, 4),
    (4, 6), (1, 10), (10, 1), (7, 3), (3, 3),
]
# Odd and even, shorter and longer than the filter (2 * 10 * max(up, down) + 1 taps).
LENGTHS = [1, 2, 5, 64, 101, 1000]


def _rows(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _reference(rows, up, down):
    return np.stack([scipy.signal.resample_poly(row, up, down) for row in rows])


def _assert_matches(got, ref, rtol=1e-12):
    assert got.shape == ref.shape
    assert got.dtype == ref.dtype
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize(("up", "down"), FACTORS)
@pytest.mark.parametrize("length", LENGTHS)
def test_matches_resample_poly(up, down, length):
    # 37 rows: one full block of lanes and a partial one.
    x = _rows((37, length), seed=length)
    _assert_matches(resample_poly_rows(x, up, down), _reference(x, up, down))


@pytest.mark.parametrize(("up", "down", "length"), [(2, 5, 20_000), (1, 37, 5001), (3, 1, 9000)])
def test_long_signals_cross_time_windows(up, down, length):
    # Long enough that the time axis is cut into several windows.
    x = _rows((3, length), seed=1)
    _assert_matches(resample_poly_rows(x, up, down), _reference(x, up, down))


def test_benchmark_case_shape():
    x = _rows((70, 3000), seed=2)  # 250 Hz -> 100 Hz
    y = resample_poly_rows(x, 2, 5)
    assert y.shape == (70, 1200)
    _assert_matches(y, _reference(x, 2, 5))


def test_single_row():
    x = _rows((1, 777), seed=3)
    _assert_matches(resample_poly_rows(x, 3, 4), _reference(x, 3, 4))


def test_no_rows_and_no_samples():
    assert resample_poly_rows(np.empty((0, 100)), 2, 5).shape == (0, 40)
    ref = scipy.signal.resample_poly(np.empty((2, 0)), 2, 5, axis=-1)
    assert resample_poly_rows(np.empty((2, 0)), 2, 5).shape == ref.shape


@pytest.mark.parametrize(
    "make_view",
    [
        lambda x: x[:, ::2],  # strided time axis
        lambda x: x[::3],  # strided rows
        lambda x: np.asfortranarray(x),  # column-major
        lambda x: x.T.copy().T,  # column-major via transpose
    ],
)
def test_non_contiguous_input(make_view):
    x = make_view(_rows((40, 600), seed=4))
    _assert_matches(resample_poly_rows(x, 2, 5), _reference(np.array(x), 2, 5))


def test_float32_keeps_dtype_and_matches_scipy():
    x = _rows((35, 500), seed=5, dtype=np.float32)
    got = resample_poly_rows(x, 2, 5)
    ref = _reference(x, 2, 5)  # scipy accumulates float32 input in float32
    assert got.dtype == ref.dtype == np.float32
    _assert_matches(got, ref, rtol=1e-5)


def test_float32_is_float64_arithmetic_with_scipys_float32_taps():
    # The float32 taps scipy uses, applied in float64, give our result to rounding.
    x = _rows((5, 300), seed=6, dtype=np.float32)
    taps, _, half_len = polyphase.polyphase_taps(2, 5, np.dtype(np.float32))
    h = scipy.signal.firwin(2 * half_len + 1, 1 / 5, window=("kaiser", 5.0))
    h32_scaled = (h.astype(np.float32) * np.float32(2)).astype(np.float64)
    assert np.array_equal(taps[0, :51], h32_scaled[0::2])
    ref = np.stack(
        [scipy.signal.resample_poly(r.astype(np.float64), 2, 5, window=h32_scaled / 2) for r in x]
    )
    np.testing.assert_allclose(resample_poly_rows(x, 2, 5), ref.astype(np.float32), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [(np.float16, np.float32), (np.int32, np.float64), (np.int16, np.float64), (np.uint8, np.float64)],
)
def test_other_dtypes_follow_scipy(dtype, out_dtype):
    x = np.abs(_rows((4, 200), seed=7) * 100).astype(dtype)
    got = resample_poly_rows(x, 2, 5)
    ref = _reference(x, 2, 5)
    assert got.dtype == ref.dtype == out_dtype
    _assert_matches(got, ref, rtol=1e-5 if dtype == np.float16 else 1e-12)


def test_up_equal_down_returns_a_copy():
    x = _rows((3, 50), seed=8)
    y = resample_poly_rows(x, 4, 4)
    np.testing.assert_array_equal(y, x)
    assert y is not x and not np.shares_memory(x, y)


def test_numpy_integer_factors():
    x = _rows((2, 100), seed=9)
    _assert_matches(resample_poly_rows(x, np.int64(2), np.int32(5)), _reference(x, 2, 5))


def test_nan_stays_local():
    # scipy's zero-padded filter spreads a NaN to at most a few extra outputs, through
    # 0 * NaN; here only taps that meet the NaN sample see it.
    x = _rows((2, 400), seed=10)
    x[1, 150] = np.nan
    got, ref = resample_poly_rows(x, 2, 5), _reference(x, 2, 5)
    assert np.isnan(got).any()
    assert not np.isnan(got[0]).any()
    assert np.all(np.isnan(ref)[np.isnan(got)])
    finite = ~np.isnan(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12, atol=1e-12)


def test_input_is_not_modified():
    x = _rows((33, 300), seed=11)
    before = x.copy()
    resample_poly_rows(x, 2, 5)
    resample_poly_rows(x, 3, 3)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", ["up", "down"])
@pytest.mark.parametrize("bad", [0, -2, 2.5, 2.0, True, "2", None])
def test_rejects_bad_factors(name, bad):
    factors = {"up": 2, "down": 5, name: bad}
    with pytest.raises(ValueError, match=name):
        resample_poly_rows(_rows((2, 50)), **factors)


@pytest.mark.parametrize(
    "rows",
    [np.zeros(10), np.zeros((2, 3, 10)), np.zeros((2, 10), dtype=np.complex128)],
)
def test_rejects_bad_rows(rows):
    with pytest.raises(ValueError, match="rows"):
        resample_poly_rows(rows, 2, 5)
