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
