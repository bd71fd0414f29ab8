"""Batched DWT against per-sample PyWavelets, round trips and level validation."""

from __future__ import annotations

import numpy as np
import pytest
import pywt

from contrastive_signals.signal import wavelets

SHAPES = [(2, 3, 256), (3, 1, 301)]


def _batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("wavelet", ["haar", "db4"])
@pytest.mark.parametrize("level", [None, 1, 3])
@pytest.mark.parametrize("mode", ["symmetric", "periodization"])
def test_wavedec_matches_pywt_loop(shape, wavelet, level, mode):
    x = _batch(shape)
    got = wavelets.wavedec(x, wavelet=wavelet, level=level, mode=mode)
    expected_level = pywt.dwt_max_level(shape[-1], wavelet) if level is None else level
    assert len(got) == expected_level + 1
    for n in range(shape[0]):
        for c in range(shape[1]):
            ref = pywt.wavedec(x[n, c], wavelet, mode=mode, level=expected_level)
            for k, (g, r) in enumerate(zip(got, ref, strict=True)):
                assert g.shape[:2] == shape[:2]
                np.testing.assert_allclose(g[n, c], r, atol=1e-12, err_msg=f"coefficient {k}")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("wavelet", ["haar", "db4"])
@pytest.mark.parametrize("level", [None, 2])
def test_wavedec_waverec_round_trip(shape, wavelet, level):
    x = _batch(shape)
    coeffs = wavelets.wavedec(x, wavelet=wavelet, level=level)
    back = wavelets.waverec(coeffs, wavelet=wavelet, length=shape[-1])
    np.testing.assert_allclose(back, x, atol=1e-10)


@pytest.mark.parametrize("wavelet", ["haar", "db4"])
def test_wavelet_features_concatenate_all_levels(wavelet):
    x = _batch((2, 3, 256))
    coeffs = wavelets.wavedec(x, wavelet=wavelet, level=3)
    feats = wavelets.wavelet_features(x, wavelet=wavelet, level=3)
    assert feats.shape == (2, 3, sum(c.shape[-1] for c in coeffs))
    np.testing.assert_array_equal(feats, np.concatenate(coeffs, axis=-1))


@pytest.mark.parametrize("level", [0, 99, 2.5, -1])
def test_bad_level_raises_naming_level(level):
    with pytest.raises(ValueError, match="level"):
        wavelets.wavedec(_batch((1, 1, 128)), wavelet="db4", level=level)


def test_too_short_signal_and_unknown_wavelet_raise():
    with pytest.raises(ValueError, match="too short"):
        wavelets.wavedec(_batch((1, 1, 4)), wavelet="db4")
    with pytest.raises(ValueError, match="wavelet"):
        wavelets.wavedec(_batch((1, 1, 64)), wavelet="not-a-wavelet")


def test_input_not_mutated():
    x = _batch((2, 2, 128))
    before = x.copy()
    wavelets.wavelet_features(x, wavelet="db4", level=2)
    np.testing.assert_array_equal(x, before)


# --- the numba kernel behind wavedec, against PyWavelets signal by signal ---

WAVELETS = ["haar", "db2", "db4", "sym5", "coif1", "bior2.2", "rbio3.1"]
KERNEL_MODES = [
    "zero",
    "constant",
    "symmetric",
    "reflect",
    "periodic",
    "smooth",
    "antisymmetric",
    "antireflect",
]


def _lengths_for(wavelet):
    """Odd and even lengths, the shortest with a useful level and lengths where
    ``dwt_max_level`` steps up, plus a longer signal."""
    f = pywt.Wavelet(wavelet).dec_len
    shortest = 2 * (f - 1)
    return sorted({shortest, shortest + 1, 4 * (f - 1) - 1, 4 * (f - 1), 8 * (f - 1), 257})


def _assert_matches_pywt_rows(got, x, wavelet, mode, level, rtol=1e-12):
    assert len(got) == level + 1
    scale = max(1.0, float(np.max(np.abs(x))))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            ref = pywt.wavedec(x[n, c], wavelet, mode=mode, level=level)
            for k, (g, r) in enumerate(zip(got, ref, strict=True)):
                assert g.shape == (*x.shape[:2], r.size)
                assert g.dtype == r.dtype
                # smooth extrapolates linearly, so coefficients grow with the level
                atol = rtol * scale * max(1.0, float(np.max(np.abs(r))))
                np.testing.assert_allclose(
                    g[n, c], r, rtol=rtol, atol=atol, err_msg=f"{wavelet} {mode} coefficient {k}"
                )


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("mode", [*KERNEL_MODES, "periodization"])
def test_wavedec_matches_pywt_for_every_mode_length_and_level(wavelet, mode):
    for length in _lengths_for(wavelet):
        x = _batch((2, 3, length), seed=length)
        for level in range(1, pywt.dwt_max_level(length, wavelet) + 1):
            got = wavelets.wavedec(x, wavelet=wavelet, level=level, mode=mode)
            _assert_matches_pywt_rows(got, x, wavelet, mode, level)


@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym5"])
@pytest.mark.parametrize("mode", ["symmetric", "antireflect", "periodization"])
def test_wavedec_float32_keeps_float32_and_pywt_values(wavelet, mode):
    x64 = _batch((3, 2, 301))
    x = x64.astype(np.float32)
    got = wavelets.wavedec(x, wavelet=wavelet, mode=mode)
    assert all(g.dtype == np.float32 for g in got)
    # PyWavelets adds in float32; the kernel adds in float64 and rounds once
    level = pywt.dwt_max_level(301, wavelet)
    _assert_matches_pywt_rows(got, x, wavelet, mode, level, rtol=2e-5)
    if mode != "periodization":
        exact = wavelets.wavedec(x.astype(np.float64), wavelet=wavelet, mode=mode)
        for g, e in zip(got, exact, strict=True):
            np.testing.assert_array_equal(g, e.astype(np.float32))


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float16, np.float32), (np.int32, np.float64), (np.int64, np.float64), (bool, np.float64)],
)
def test_wavedec_follows_pywt_dtypes(dtype, expected):
    x = (_batch((2, 1, 64)) * 4).astype(dtype)
    got = wavelets.wavedec(x, wavelet="db2", level=2)
    ref = pywt.wavedec(x, "db2", level=2, axis=-1)
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == r.dtype == expected
        np.testing.assert_allclose(g, r, rtol=1e-5 if expected == np.float32 else 1e-12, atol=1e-5)


def test_wavedec_complex_input_goes_to_pywt():
    x = _batch((2, 2, 64)) + 1j * _batch((2, 2, 64), seed=1)
    got = wavelets.wavedec(x, wavelet="db2", level=3)
    for g, r in zip(got, pywt.wavedec(x, "db2", level=3, axis=-1), strict=True):
        np.testing.assert_allclose(g, r, atol=1e-12)


def test_wavedec_non_contiguous_and_read_only_input():
    base = _batch((4, 6, 602))
    x = base[::2, ::2, ::2]  # [2, 3, 301], strided on every axis
    assert not x.flags.c_contiguous
    before = base.copy()
    got = wavelets.wavedec(x, wavelet="db4")
    _assert_matches_pywt_rows(got, np.ascontiguousarray(x), "db4", "symmetric", len(got) - 1)
    np.testing.assert_array_equal(base, before)

    read_only = _batch((2, 3, 301))
    read_only.setflags(write=False)
    got = wavelets.wavedec(read_only, wavelet="sym5", mode="reflect")
    # PyWavelets itself refuses read-only 1-D buffers, so the reference gets a copy
    _assert_matches_pywt_rows(got, read_only.copy(), "sym5", "reflect", len(got) - 1)


@pytest.mark.parametrize("mode", [*KERNEL_MODES, "periodization"])
def test_wavedec_never_modifies_its_input(mode):
    x = _batch((3, 2, 100))
    before = x.copy()
    coeffs = wavelets.wavedec(x, wavelet="db4", mode=mode)
    np.testing.assert_array_equal(x, before)
    for c in coeffs:
        assert not np.shares_memory(c, x)


def test_wavedec_outputs_are_separate_contiguous_arrays():
    x = _batch((2, 3, 256))
    coeffs = wavelets.wavedec(x, wavelet="db2", level=3)
    for c in coeffs:
        assert c.flags.c_contiguous and c.flags.writeable
    coeffs[1][...] = 0.0  # writing one leaves the others intact
    fresh = wavelets.wavedec(x, wavelet="db2", level=3)
    for k in (0, 2, 3):
        np.testing.assert_array_equal(coeffs[k], fresh[k])


def test_wavedec_empty_batch():
    coeffs = wavelets.wavedec(np.empty((0, 2, 64)), wavelet="db2", level=2)
    ref = pywt.wavedec(np.empty((0, 2, 64)), "db2", level=2, axis=-1)
    assert [c.shape for c in coeffs] == [r.shape for r in ref]


def test_bad_mode_raises_naming_mode():
    with pytest.raises(ValueError, match="mode"):
        wavelets.wavedec(_batch((1, 1, 64)), mode="mirror")


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("mode", KERNEL_MODES)
def test_kernel_extends_short_signals_like_pywt(wavelet, mode):
    """Signals shorter than the filter, where the extension reflects or wraps more
    than once: wavedec's level check never lets these through, so the kernel is
    called directly, one level, against ``pywt.dwt``."""
    from contrastive_signals.signal import _wavelet_kernels as kernels

    w = pywt.Wavelet(wavelet)
    f = w.dec_len
    g_lo = np.array(w.dec_lo[::-1])
    g_hi = np.array(w.dec_hi[::-1])
    shortest = 2 if mode in ("reflect", "antireflect") else 1  # pywt rejects length 1 there
    for length in range(shortest, 2 * f + 2):
        x = _batch((3, length), seed=length)
        n_out = (length + f - 1) // 2
        out = np.full(2 * 3 * n_out, np.nan)
        offsets = np.array([0, 3 * n_out], dtype=np.int64)
        kernels.wavedec_rows(x, g_lo, g_hi, 1, kernels.MODE_CODES[mode], out, offsets)
        approx, detail = out[: 3 * n_out].reshape(3, n_out), out[3 * n_out :].reshape(3, n_out)
        for r in range(3):
            ref_a, ref_d = pywt.dwt(x[r], w, mode=mode)
            np.testing.assert_allclose(
                approx[r], ref_a, rtol=1e-12, atol=1e-12, err_msg=f"{length}"
            )
            np.testing.assert_allclose(
                detail[r], ref_d, rtol=1e-12, atol=1e-12, err_msg=f"{length}"
            )
