"""Batched filters against per-sample scipy/numpy loops and known signals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from contrastive_signals.signal import filters

SHAPES = [(2, 3, 400), (3, 1, 501)]


def _batch(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _per_sample(fn, x):
    """Reference: apply a 1-D function to every [n, c] row in a loop."""
    return np.stack([np.stack([fn(row) for row in sample]) for sample in x])


def _sine(freq_hz, sampling_rate, length, amplitude=1.0):
    t = np.arange(length) / sampling_rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


# ------------------------------------------------------------------ derivative


@pytest.mark.parametrize("shape", SHAPES)
def test_derivative_matches_np_gradient(shape):
    x = _batch(shape)
    got = filters.derivative(x, sampling_rate=250.0)
    ref = _per_sample(lambda r: np.gradient(r, 1 / 250.0), x)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)


def test_derivative_diff_method():
    x = _batch((2, 2, 50))
    got = filters.derivative(x, sampling_rate=10.0, method="diff")
    np.testing.assert_allclose(got[..., 1:], np.diff(x, axis=-1) * 10.0)
    assert np.all(got[..., 0] == 0)


def test_derivative_of_known_sine():
    fs, f = 1000.0, 5.0
    t = np.arange(2000) / fs
    x = np.sin(2 * np.pi * f * t)[None, None]
    got = filters.derivative(x, sampling_rate=fs)[0, 0]
    expected = 2 * np.pi * f * np.cos(2 * np.pi * f * t)
    # Central differences are second-order accurate: error ~ (2 pi f h)^2 / 6 relative.
    np.testing.assert_allclose(got[1:-1], expected[1:-1], atol=1e-3 * 2 * np.pi * f)


def test_add_derivative_channel_stacks_channels():
    x = _batch((2, 3, 40))
    got = filters.add_derivative_channel(x, sampling_rate=4.0)
    assert got.shape == (2, 6, 40)
    np.testing.assert_array_equal(got[:, :3], x)
    np.testing.assert_allclose(got[:, 3:], filters.derivative(x, sampling_rate=4.0))


def test_add_derivative_channel_scale_and_savgol_smoothing():
    x = _batch((2, 1, 64))
    plain = filters.add_derivative_channel(x, sampling_rate=4.0)
    np.testing.assert_array_equal(filters.add_derivative_channel(x, sampling_rate=4.0, scale=1.0),
                                  plain)  # the default is the unscaled, unsmoothed derivative
    scaled = filters.add_derivative_channel(x, sampling_rate=4.0, scale=0.1)
    np.testing.assert_array_equal(scaled[:, :1], x)
    np.testing.assert_allclose(scaled[:, 1:], 0.1 * plain[:, 1:], rtol=1e-6)
    smooth = filters.add_derivative_channel(x, sampling_rate=4.0, smooth_window=9,
                                            smooth_order=2)
    np.testing.assert_allclose(smooth[:, 1:], scipy.signal.savgol_filter(
        x, 9, 2, deriv=1, delta=0.25, axis=-1, mode="interp"), rtol=1e-5, atol=1e-6)
    assert smooth.dtype == x.dtype
    # smoothing before differencing: white noise's derivative shrinks, a slope survives
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(8, 1, 512))
    ramp = np.broadcast_to(np.arange(512.0), (8, 1, 512))
    raw = filters.add_derivative_channel(noise)[:, 1]
    smoothed = filters.add_derivative_channel(noise, smooth_window=15, smooth_order=2)[:, 1]
    assert smoothed.std() < 0.2 * raw.std()
    np.testing.assert_allclose(
        filters.add_derivative_channel(ramp, smooth_window=15, smooth_order=2)[:, 1], 1.0)


@pytest.mark.parametrize("options, message", [
    ({"scale": 0.0}, "scale must be a finite number > 0"),
    ({"scale": float("nan")}, "scale must be"),
    ({"scale": True}, "scale must be"),
    ({"smooth_window": 4}, "smooth_window must be an odd integer >= 3"),
    ({"smooth_window": 1}, "smooth_window must be an odd integer"),
    ({"smooth_window": 7.0}, "smooth_window must be an odd integer"),
    ({"smooth_window": 7, "smooth_order": 7}, "smooth_order must be an integer with 1 <="),
    ({"smooth_window": 7, "smooth_order": 0}, "smooth_order must be"),
])
def test_derivative_options_are_checked_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        filters.check_derivative_options(**options)
    with pytest.raises(ValueError, match=message):
        filters.add_derivative_channel(_batch((1, 1, 32)), **options)


def test_savgol_derivative_needs_enough_samples_and_no_diff_method():
    with pytest.raises(ValueError, match="at least 9 samples"):
        filters.add_derivative_channel(_batch((1, 1, 5)), smooth_window=9)
    with pytest.raises(ValueError, match="does not apply with smooth_window"):
        filters.add_derivative_channel(_batch((1, 1, 32)), smooth_window=9, method="diff")


def test_derivative_rejects_bad_method():
    with pytest.raises(ValueError, match="method"):
        filters.derivative(_batch((1, 1, 10)), method="spline")


# --------------------------------------------------------------------- detrend


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("order", "kind"), [(0, "constant"), (1, "linear")])
def test_detrend_matches_scipy(shape, order, kind):
    x = _batch(shape) + np.linspace(3, -2, shape[-1])  # add a trend worth removing
    got = filters.detrend_polynomial(x, order=order)
    ref = _per_sample(lambda r: scipy.signal.detrend(r, type=kind), x)
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_detrend_higher_order_matches_polyfit():
    x = _batch((2, 2, 300))
    t = np.arange(300)
    got = filters.detrend_polynomial(x, order=3)

    def residual(r):
        return r - np.polyval(np.polyfit(t, r, 3), t)

    np.testing.assert_allclose(got, _per_sample(residual, x), atol=1e-8)


def test_detrend_removes_exact_polynomial():
    t = np.linspace(0, 1, 200)
    x = np.broadcast_to(2 - 3 * t + 5 * t**2, (2, 3, 200)).copy()
    np.testing.assert_allclose(filters.detrend_polynomial(x, order=2), 0, atol=1e-10)


# ------------------------------------------------------------------ IIR filters


FILTER_CASES = [
    ("bandpass", {"low_hz": 1.0, "high_hz": 30.0}, ("bandpass", [1.0, 30.0])),
    ("lowpass", {"cutoff_hz": 20.0}, ("lowpass", 20.0)),
    ("highpass", {"cutoff_hz": 2.0}, ("highpass", 2.0)),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("name", "kwargs", "design"), FILTER_CASES)
@pytest.mark.parametrize("order", [2, 4])
def test_butterworth_filters_match_scipy_loop(shape, name, kwargs, design, order):
    fs = 100.0
    x = _batch(shape)
    got = getattr(filters, name)(x, sampling_rate=fs, order=order, **kwargs)
    btype, wn = design
    sos = scipy.signal.butter(order, wn, btype=btype, fs=fs, output="sos")
    ref = _per_sample(lambda r: scipy.signal.sosfiltfilt(sos, r), x)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_bandpass_keeps_in_band_and_removes_out_of_band_sine():
    fs, n = 200.0, 2000
    in_band, out_band = _sine(10.0, fs, n), _sine(60.0, fs, n, amplitude=2.0)
    x = np.stack([in_band + out_band, in_band])[:, None]  # [2, 1, L]
    y = filters.bandpass(x, sampling_rate=fs, low_hz=5.0, high_hz=20.0)
    middle = slice(200, -200)  # away from edge transients
    np.testing.assert_allclose(y[0, 0, middle], in_band[middle], atol=0.02)
    np.testing.assert_allclose(y[1, 0, middle], in_band[middle], atol=0.02)


def test_notch_matches_filtfilt_and_removes_50hz():
    fs, n = 500.0, 3000
    x = _batch((2, 2, n)) * 0.1
    got = filters.notch(x, sampling_rate=fs, freq_hz=50.0, quality=30.0)
    b, a = scipy.signal.iirnotch(50.0, 30.0, fs=fs)
    np.testing.assert_allclose(
        got, _per_sample(lambda r: scipy.signal.filtfilt(b, a, r), x), atol=1e-10
    )

    keep = _sine(10.0, fs, n)
    y = filters.notch((keep + _sine(50.0, fs, n))[None, None], sampling_rate=fs, freq_hz=50.0)
    middle = slice(500, -500)
    np.testing.assert_allclose(y[0, 0, middle], keep[middle], atol=0.01)


@pytest.mark.parametrize(
    ("fn", "kwargs", "param"),
    [
        (filters.bandpass, {"low_hz": 1.0, "high_hz": 60.0}, "high_hz"),
        (filters.bandpass, {"low_hz": 0.0, "high_hz": 20.0}, "low_hz"),
        (filters.lowpass, {"cutoff_hz": 50.0}, "cutoff_hz"),
        (filters.highpass, {"cutoff_hz": 70.0}, "cutoff_hz"),
        (filters.notch, {"freq_hz": 55.0}, "freq_hz"),
    ],
)
def test_cutoffs_above_nyquist_raise_naming_the_parameter(fn, kwargs, param):
    with pytest.raises(ValueError, match=f"{param}=.*Nyquist"):
        fn(_batch((1, 1, 200)), sampling_rate=100.0, **kwargs)


def test_bandpass_rejects_inverted_band():
    with pytest.raises(ValueError, match="low_hz"):
        filters.bandpass(_batch((1, 1, 200)), sampling_rate=100.0, low_hz=20.0, high_hz=10.0)


# --------------------------------------------------------------- normalisation


@pytest.mark.parametrize("shape", SHAPES)
def test_normalize_channel_matches_loop(shape):
    x = _batch(shape) * 3 + 7
    got = filters.normalize(x, scope="channel", eps=1e-8)
    ref = _per_sample(lambda r: (r - r.mean()) / (r.std() + 1e-8), x)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_normalize_recording_matches_loop(shape):
    x = _batch(shape) * np.arange(1, shape[1] + 1)[:, None]
    got = filters.normalize(x, scope="recording", eps=1e-8)
    ref = np.stack([(s - s.mean()) / (s.std() + 1e-8) for s in x])
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_normalize_flat_signal_stays_finite():
    got = filters.normalize(np.ones((1, 2, 10)), eps=1e-8)
    assert np.all(np.isfinite(got)) and np.allclose(got, 0)


# ------------------------------------------------------------------- resample


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("from_hz", "to_hz", "up", "down"), [(300, 100, 1, 3), (100, 256, 64, 25), (250.0, 100.0, 2, 5)]
)
def test_resample_matches_resample_poly(shape, from_hz, to_hz, up, down):
    x = _batch(shape)
    assert filters.resampling_factors(from_hz, to_hz) == (up, down)
    got = filters.resample(x, from_hz=from_hz, to_hz=to_hz)
    assert got.shape[-1] == -(-shape[-1] * up // down)
    ref = _per_sample(lambda r: scipy.signal.resample_poly(r, up, down), x)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_resample_keeps_a_slow_sine():
    x = _sine(3.0, 500.0, 1000)[None, None]
    y = filters.resample(x, from_hz=500.0, to_hz=100.0)
    assert y.shape == (1, 1, 200)
    expected = _sine(3.0, 100.0, 200)
    np.testing.assert_allclose(y[0, 0, 20:-20], expected[20:-20], atol=1e-3)


def test_resample_rejects_irrational_ratio():
    with pytest.raises(ValueError, match="to_hz"):
        filters.resample(_batch((1, 1, 100)), from_hz=100.0, to_hz=100.0 * np.pi)


# ----------------------------------------------------------------- invariants


ALL_CALLS = [
    (filters.derivative, {"sampling_rate": 100.0}),
    (filters.add_derivative_channel, {"sampling_rate": 100.0}),
    (filters.detrend_polynomial, {"order": 2}),
    (filters.bandpass, {"sampling_rate": 100.0, "low_hz": 1.0, "high_hz": 20.0}),
    (filters.lowpass, {"sampling_rate": 100.0, "cutoff_hz": 20.0}),
    (filters.highpass, {"sampling_rate": 100.0, "cutoff_hz": 1.0}),
    (filters.notch, {"sampling_rate": 100.0, "freq_hz": 25.0}),
    (filters.normalize, {"scope": "recording"}),
    (filters.resample, {"from_hz": 100.0, "to_hz": 50.0}),
]


@pytest.mark.parametrize(("fn", "kwargs"), ALL_CALLS, ids=lambda v: getattr(v, "__name__", ""))
def test_inputs_not_mutated_and_float32_kept(fn, kwargs):
    x = _batch((2, 2, 300), dtype=np.float32)
    before = x.copy()
    out = fn(x, **kwargs)
    np.testing.assert_array_equal(x, before)
    assert out.dtype == np.float32
    assert not np.shares_memory(out, x)


@pytest.mark.parametrize(("fn", "kwargs"), ALL_CALLS, ids=lambda v: getattr(v, "__name__", ""))
def test_rejects_non_batched_input(fn, kwargs):
    with pytest.raises(ValueError, match=r"\[N, C, L\]"):
        fn(np.zeros(300), **kwargs)
