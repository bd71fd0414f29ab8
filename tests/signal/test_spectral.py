"""FFT and spectrogram features against per-sample numpy/scipy and each other."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from contrastive_signals.signal import spectral

SHAPES = [(2, 3, 512), (3, 1, 301)]
FS = 128.0


def _batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _per_sample(fn, x):
    return np.stack([np.stack([fn(row) for row in sample]) for sample in x])


@pytest.mark.parametrize("shape", SHAPES)
def test_fft_features_one_sided_match_numpy(shape):
    x = _batch(shape)
    out = spectral.fft_features(x, sampling_rate=FS, return_phase=True)
    np.testing.assert_allclose(
        out["magnitude"], _per_sample(lambda r: np.abs(np.fft.rfft(r)), x), atol=1e-10
    )
    np.testing.assert_allclose(
        out["phase"], _per_sample(lambda r: np.angle(np.fft.rfft(r)), x), atol=1e-9
    )
    np.testing.assert_array_equal(out["frequencies"], np.fft.rfftfreq(shape[-1], 1 / FS))
    assert out["magnitude"].shape == (*shape[:2], shape[-1] // 2 + 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_fft_features_two_sided_match_numpy(shape):
    x = _batch(shape)
    out = spectral.fft_features(x, sampling_rate=FS, one_sided=False)
    assert "phase" not in out
    np.testing.assert_allclose(
        out["magnitude"], _per_sample(lambda r: np.abs(np.fft.fft(r)), x), atol=1e-10
    )
    np.testing.assert_array_equal(out["frequencies"], np.fft.fftfreq(shape[-1], 1 / FS))


def test_fft_magnitude_peaks_at_sine_frequency():
    t = np.arange(256) / FS
    x = (3.0 * np.sin(2 * np.pi * 16.0 * t))[None, None]
    out = spectral.fft_features(x, sampling_rate=FS)
    k = int(np.argmax(out["magnitude"][0, 0]))
    assert out["frequencies"][k] == 16.0
    assert out["magnitude"][0, 0, k] == pytest.approx(3.0 * 256 / 2)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("window", "nperseg", "noverlap"), [("hann", 64, None), ("hamming", 100, 50)]
)
@pytest.mark.parametrize("detrend", ["constant", False])
def test_spectrogram_matches_scipy_loop(shape, window, nperseg, noverlap, detrend):
    x = _batch(shape)
    out = spectral.spectrogram(
        x, sampling_rate=FS, window=window, nperseg=nperseg, noverlap=noverlap, detrend=detrend
    )

    def one(r):
        return scipy.signal.spectrogram(
            r, fs=FS, window=window, nperseg=nperseg, noverlap=noverlap, detrend=detrend
        )

    f, t, _ = one(x[0, 0])
    np.testing.assert_allclose(
        out["power"], _per_sample(lambda r: one(r)[2], x), rtol=1e-10, atol=1e-14
    )
    np.testing.assert_array_equal(out["frequencies"], f)
    np.testing.assert_array_equal(out["times"], t)
    step = nperseg - (nperseg // 8 if noverlap is None else noverlap)
    assert out["power"].shape == (*shape[:2], nperseg // 2 + 1, 1 + (shape[-1] - nperseg) // step)


def test_spectrogram_log_is_decibels():
    x = _batch((1, 2, 256))
    power = spectral.spectrogram(x, sampling_rate=FS, nperseg=64)["power"]
    db = spectral.spectrogram(x, sampling_rate=FS, nperseg=64, log=True, eps=1e-12)["power"]
    np.testing.assert_allclose(db, 10 * np.log10(power + 1e-12))


def test_spectrogram_rejects_long_segments():
    with pytest.raises(ValueError, match="nperseg"):
        spectral.spectrogram(_batch((1, 1, 100)), sampling_rate=FS, nperseg=256)


def _compare_torch_with_scipy(device: str, dtype: torch.dtype, rtol: float):
    x = _batch((2, 3, 500))
    n_fft, hop = 64, 16
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    ref = spectral.spectrogram(
        x, sampling_rate=FS, window="hann", nperseg=n_fft, noverlap=n_fft - hop, detrend=False
    )["power"]
    got = spectral.torch_spectrogram(xt, n_fft=n_fft, hop_length=hop, sampling_rate=FS)
    assert got.device == xt.device and got.dtype == dtype
    np.testing.assert_allclose(got.cpu().double().numpy(), ref, rtol=rtol, atol=rtol * ref.max())

    # Unscaled: raw |STFT|^2 = density * fs * sum(w^2), one-sided doubling undone.
    raw = spectral.torch_spectrogram(xt, n_fft=n_fft, hop_length=hop).cpu().double().numpy()
    w = scipy.signal.get_window("hann", n_fft)
    undo = np.full(n_fft // 2 + 1, 2.0)
    undo[[0, -1]] = 1.0
    np.testing.assert_allclose(
        raw, ref * FS * np.sum(w**2) / undo[:, None], rtol=rtol, atol=rtol * raw.max()
    )


def test_torch_spectrogram_matches_scipy_on_cpu():
    _compare_torch_with_scipy("cpu", torch.float64, rtol=1e-10)


def test_torch_spectrogram_odd_n_fft_matches_scipy():
    x = _batch((1, 2, 300))
    ref = spectral.spectrogram(x, sampling_rate=FS, nperseg=63, noverlap=43, detrend=False)["power"]
    got = spectral.torch_spectrogram(torch.from_numpy(x), n_fft=63, hop_length=20, sampling_rate=FS)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-14)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_spectrogram_runs_on_cuda_and_matches_scipy():
    _compare_torch_with_scipy("cuda", torch.float32, rtol=1e-4)


def test_torch_spectrogram_rejects_bad_hop():
    with pytest.raises(ValueError, match="hop_length"):
        spectral.torch_spectrogram(torch.zeros(1, 1, 100), n_fft=32, hop_length=0)


def test_inputs_not_mutated():
    x = _batch((2, 2, 300))
    before = x.copy()
    spectral.fft_features(x, sampling_rate=FS, return_phase=True)
    spectral.spectrogram(x, sampling_rate=FS, nperseg=64, log=True)
    xt = torch.from_numpy(x.copy())
    spectral.torch_spectrogram(xt, n_fft=64, hop_length=32, sampling_rate=FS)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(xt.numpy(), before)
