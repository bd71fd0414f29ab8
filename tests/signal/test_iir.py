"""The numba zero-phase IIR kernel against scipy.signal.sosfiltfilt, row by row."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from contrastive_signals.signal import iir


def _rows(n_rows, length, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((n_rows, length)).astype(dtype)


def _scipy_rows(sos, rows):
    return np.stack([scipy.signal.sosfiltfilt(sos, r) for r in rows])


SOS_CASES = {
    "bandpass4": scipy.signal.butter(4, [0.5, 30.0], btype="bandpass", fs=250.0, output="sos"),
    # An odd order has a first-order section (b2 = a2 = 0), which shortens scipy's padding.
    "lowpass3": scipy.signal.butter(3, 20.0, fs=100.0, output="sos"),
    "cheby8": scipy.signal.cheby1(8, 1.0, [2.0, 12.0], btype="bandpass", fs=100.0, output="sos"),
    "notch": scipy.signal.tf2sos(*scipy.signal.iirnotch(50.0, 30.0, fs=250.0)),
}


@pytest.mark.parametrize("name", SOS_CASES)
@pytest.mark.parametrize("n_rows", [1, iir.BLOCK, iir.BLOCK * 2 + 5])
def test_equals_scipy_sosfiltfilt_row_by_row(name, n_rows):
    sos = SOS_CASES[name]
    rows = _rows(n_rows, 517, seed=n_rows)
    got = iir.sosfiltfilt_rows(sos, rows, np.float64)
    np.testing.assert_allclose(got, _scipy_rows(sos, rows), rtol=1e-12, atol=1e-12)


def test_padding_matches_scipy_and_shortest_signal_works():
    sos = SOS_CASES["lowpass3"]
    edge = iir.sosfiltfilt_padding(sos)
    assert edge == 3 * (2 * 2 + 1 - 1)  # two sections, one of them first-order
    rows = _rows(3, edge + 1)
    np.testing.assert_allclose(
        iir.sosfiltfilt_rows(sos, rows, np.float64), _scipy_rows(sos, rows), rtol=1e-12, atol=1e-12
    )


def test_too_short_signal_names_the_padding():
    sos = SOS_CASES["bandpass4"]
    edge = iir.sosfiltfilt_padding(sos)
    with pytest.raises(ValueError, match=f"padding of {edge} samples.*got length {edge}"):
        iir.sosfiltfilt_rows(sos, _rows(2, edge), np.float64)


def test_rejects_sections_not_normalised():
    sos = SOS_CASES["notch"].copy()
    sos[0, 3] = 2.0
    with pytest.raises(ValueError, match="a0 == 1"):
        iir.sosfiltfilt_rows(sos, _rows(2, 100), np.float64)


def test_float32_in_float32_out_computed_in_float64():
    sos = SOS_CASES["bandpass4"]
    rows = _rows(40, 300, dtype=np.float32)
    got = iir.sosfiltfilt_rows(sos, rows, np.float32)
    assert got.dtype == np.float32
    # scipy builds the odd extension in float32 before filtering in float64; the kernel
    # builds it in float64, so the two differ by float32 rounding only.
    np.testing.assert_allclose(got, _scipy_rows(sos, rows), rtol=0, atol=1e-6)


def test_non_contiguous_rows_and_input_untouched():
    sos = SOS_CASES["cheby8"]
    base = _rows(50, 800)
    rows = base[::2, ::2]
    before = base.copy()
    got = iir.sosfiltfilt_rows(sos, rows, np.float64)
    np.testing.assert_array_equal(base, before)
    np.testing.assert_allclose(got, _scipy_rows(sos, rows), rtol=1e-12, atol=1e-12)


def test_long_signals_go_to_scipy_with_the_same_result(monkeypatch):
    sos = SOS_CASES["bandpass4"]
    rows = _rows(4, 2_000)
    fast = iir.sosfiltfilt_rows(sos, rows, np.float64)
    monkeypatch.setattr(iir, "MAX_BUFFER_BYTES", 0)
    np.testing.assert_array_equal(iir.sosfiltfilt_rows(sos, rows, np.float64), fast)


def test_same_input_gives_identical_output():
    sos = SOS_CASES["bandpass4"]
    rows = _rows(70, 1000)
    np.testing.assert_array_equal(
        iir.sosfiltfilt_rows(sos, rows, np.float64), iir.sosfiltfilt_rows(sos, rows, np.float64)
    )
