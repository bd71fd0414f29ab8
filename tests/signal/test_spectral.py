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


# --- spectrogram: compiled path against per-row scipy across its options -------------


def _scipy_rows(x, **kwargs):
    """``scipy.signal.spectrogram(row, ...)[2]`` for every row of ``[N, C, L]``."""
    return _per_sample(lambda r: scipy.signal.spectrogram(r, **kwargs)[2], x)


@pytest.mark.parametrize(
    "window", ["hann", "hamming", "blackman", "boxcar", ("tukey", 0.25), ("kaiser", 8.0)]
)
@pytest.mark.parametrize(("nperseg", "noverlap"), [(64, None), (63, 0), (100, 99), (31, 7)])
@pytest.mark.parametrize("detrend", ["constant", False, "linear"])
def test_spectrogram_matches_scipy_across_options(window, nperseg, noverlap, detrend):
    x = _batch((2, 3, 347), seed=1) + 3.0  # an offset, so detrending matters
    out = spectral.spectrogram(
        x, sampling_rate=FS, window=window, nperseg=nperseg, noverlap=noverlap, detrend=detrend
    )
    ref = _scipy_rows(x, fs=FS, window=window, nperseg=nperseg, noverlap=noverlap, detrend=detrend)
    assert out["power"].shape == ref.shape and out["power"].dtype == np.float64
    if detrend == "linear":
        # scipy fits the line with lstsq; the closed form agrees to rounding of the
        # segment, which is relatively large only in bins the line nearly cancels.
        np.testing.assert_allclose(out["power"], ref, rtol=1e-9, atol=1e-13 * ref.max())
    else:
        # Same segment means (numpy's pairwise sum) and the same pocketfft as scipy.
        np.testing.assert_allclose(out["power"], ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("nperseg", [1, 2, 3])
@pytest.mark.parametrize("detrend", ["constant", False, "linear"])
def test_spectrogram_tiny_segments_match_scipy(nperseg, detrend):
    x = _batch((1, 2, 20), seed=2)
    noverlap = 0 if nperseg == 1 else 1
    out = spectral.spectrogram(
        x, sampling_rate=FS, nperseg=nperseg, noverlap=noverlap, detrend=detrend
    )["power"]
    ref = _scipy_rows(x, fs=FS, window="hann", nperseg=nperseg, noverlap=noverlap, detrend=detrend)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-15 * max(ref.max(), 1.0))


def test_spectrogram_whole_signal_one_segment():
    x = _batch((2, 1, 128), seed=3)
    out = spectral.spectrogram(x, sampling_rate=FS, nperseg=128, noverlap=0)
    ref = _scipy_rows(x, fs=FS, window="hann", nperseg=128, noverlap=0)
    assert out["power"].shape == (2, 1, 65, 1) and out["times"].shape == (1,)
    np.testing.assert_allclose(out["power"], ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("detrend", ["constant", False, "linear"])
def test_spectrogram_single_precision_like_scipy(dtype, detrend):
    x = _batch((2, 2, 400), seed=4).astype(dtype)
    out = spectral.spectrogram(x, sampling_rate=FS, nperseg=64, noverlap=16, detrend=detrend)
    ref = _scipy_rows(x, fs=FS, window="hann", nperseg=64, noverlap=16, detrend=detrend)
    # scipy computes in float32 for float16/float32 input and returns float32.
    assert ref.dtype == np.float32 and out["power"].dtype == np.float32
    if dtype == np.float16:
        # scipy detrends float16 in float16; the batch is promoted to float32 first.
        ref = _scipy_rows(
            x.astype(np.float32), fs=FS, window="hann", nperseg=64, noverlap=16, detrend=detrend
        )
    np.testing.assert_allclose(out["power"], ref, rtol=1e-5, atol=1e-6 * ref.max())


def test_spectrogram_integer_input_is_float64():
    x = np.arange(2 * 300).reshape(1, 2, 300) % 7
    out = spectral.spectrogram(x, sampling_rate=FS, nperseg=64)["power"]
    ref = _scipy_rows(x.astype(np.float64), fs=FS, window="hann", nperseg=64)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-15 * ref.max())


def test_spectrogram_non_contiguous_input():
    base = _batch((3, 4, 700), seed=5)
    x = base[::2, 1::2, ::2]  # strided in every axis, including time
    assert not x.flags.c_contiguous
    out = spectral.spectrogram(x, sampling_rate=FS, nperseg=50, noverlap=10)["power"]
    ref = _scipy_rows(np.ascontiguousarray(x), fs=FS, window="hann", nperseg=50, noverlap=10)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("block_bytes", [1, 40_000])
def test_spectrogram_blocks_and_threads_cover_every_row(monkeypatch, block_bytes):
    from contrastive_signals.signal import _spectral_kernels

    # One row per block (many blocks over the threads), and blocks that do not
    # divide the number of rows.
    monkeypatch.setattr(_spectral_kernels, "_BLOCK_BYTES", block_bytes)
    x = _batch((13, 3, 500), seed=6)
    out = spectral.spectrogram(x, sampling_rate=FS, nperseg=64, log=True)["power"]
    ref = 10 * np.log10(_scipy_rows(x, fs=FS, window="hann", nperseg=64) + 1e-12)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_spectrogram_log_float32_stays_float32():
    x = _batch((1, 2, 256), seed=7).astype(np.float32)
    power = spectral.spectrogram(x, sampling_rate=FS, nperseg=64)["power"]
    db = spectral.spectrogram(x, sampling_rate=FS, nperseg=64, log=True)["power"]
    assert db.dtype == np.float32
    np.testing.assert_allclose(db, 10 * np.log10(power.astype(np.float64) + 1e-12), rtol=1e-5)


def test_spectrogram_window_values_and_callable_detrend():
    x = _batch((2, 2, 300), seed=8)
    named = spectral.spectrogram(x, sampling_rate=FS, window=("tukey", 0.5), nperseg=64)
    values = spectral.spectrogram(
        x, sampling_rate=FS, window=scipy.signal.get_window(("tukey", 0.5), 64), nperseg=64
    )
    np.testing.assert_array_equal(values["power"], named["power"])
    # A callable detrend goes through scipy itself.
    custom = spectral.spectrogram(
        x,
        sampling_rate=FS,
        window=("tukey", 0.5),
        nperseg=64,
        detrend=lambda d: d - d.mean(axis=-1, keepdims=True),
    )
    np.testing.assert_allclose(custom["power"], named["power"], rtol=1e-12)


def test_spectrogram_empty_batch():
    out = spectral.spectrogram(np.zeros((0, 2, 300)), sampling_rate=FS, nperseg=64)
    assert out["power"].shape == (0, 2, 33, 5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"nperseg": 0}, "nperseg"),
        ({"nperseg": 301}, "nperseg"),
        ({"nperseg": 64.0}, "nperseg"),
        ({"nperseg": 64, "noverlap": 64}, "noverlap"),
        ({"nperseg": 64, "noverlap": -1}, "noverlap"),
        ({"nperseg": 64, "noverlap": 2.5}, "noverlap"),
        ({"detrend": "quadratic"}, "detrend"),
        ({"detrend": True}, "detrend"),
        ({"window": np.ones(10), "nperseg": 64}, "window"),
        ({"sampling_rate": 0.0}, "sampling_rate"),
    ],
)
def test_spectrogram_rejects_bad_parameters(kwargs, name):
    kwargs = {"sampling_rate": FS, "nperseg": 64, **kwargs}
    with pytest.raises(ValueError, match=name):
        spectral.spectrogram(_batch((1, 1, 300)), **kwargs)


def test_spectrogram_rejects_bad_shape():
    with pytest.raises(ValueError, match="x must have shape"):
        spectral.spectrogram(_batch((2, 300)), sampling_rate=FS, nperseg=64)


# --- torch_spectrogram ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("n_fft", "hop"), [(64, 1), (64, 7), (64, 32), (64, 64), (45, 11)])
@pytest.mark.parametrize("window", ["hann", ("tukey", 0.25)])
def test_torch_spectrogram_matches_scipy(dtype, n_fft, hop, window):
    x = _batch((2, 3, 401), seed=9)
    xt = torch.as_tensor(x, dtype=dtype)
    got = spectral.torch_spectrogram(
        xt, n_fft=n_fft, hop_length=hop, window=window, sampling_rate=FS
    )
    ref = _scipy_rows(
        xt.double().numpy(),
        fs=FS,
        window=window,
        nperseg=n_fft,
        noverlap=n_fft - hop,
        detrend=False,
    )
    assert got.dtype == dtype and got.shape == ref.shape
    if dtype == torch.float64:
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-11, atol=1e-15 * ref.max())
    else:
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_torch_spectrogram_blocks_cover_every_row(monkeypatch):
    monkeypatch.setattr(spectral, "_TORCH_CPU_BLOCK_BYTES", 5_000)  # a few rows per block
    x = _batch((7, 3, 300), seed=10)
    got = spectral.torch_spectrogram(torch.from_numpy(x), n_fft=32, hop_length=10, sampling_rate=FS)
    ref = _scipy_rows(x, fs=FS, window="hann", nperseg=32, noverlap=22, detrend=False)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-11, atol=1e-15 * ref.max())


def test_torch_spectrogram_non_contiguous_input():
    base = torch.from_numpy(_batch((4, 3, 600), seed=11))
    xt = base[::2, :, 1::2]
    got = spectral.torch_spectrogram(xt, n_fft=64, hop_length=16)
    want = spectral.torch_spectrogram(xt.contiguous(), n_fft=64, hop_length=16)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_torch_spectrogram_gradient_path_matches():
    x = torch.from_numpy(_batch((2, 2, 300), seed=12)).requires_grad_()
    got = spectral.torch_spectrogram(x, n_fft=64, hop_length=16, sampling_rate=FS)
    with torch.no_grad():
        want = spectral.torch_spectrogram(x, n_fft=64, hop_length=16, sampling_rate=FS)
    torch.testing.assert_close(got.detach(), want, rtol=1e-12, atol=0)
    got.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_fft": 0}, "n_fft"),
        ({"n_fft": 301}, "n_fft"),
        ({"n_fft": 32.0}, "n_fft"),
        ({"hop_length": 33}, "hop_length"),
        ({"hop_length": 1.5}, "hop_length"),
        ({"sampling_rate": -1.0}, "sampling_rate"),
        ({"window": np.ones(5)}, "window"),
    ],
)
def test_torch_spectrogram_rejects_bad_parameters(kwargs, name):
    kwargs = {"n_fft": 32, "hop_length": 8, **kwargs}
    with pytest.raises(ValueError, match=name):
        spectral.torch_spectrogram(torch.zeros(1, 1, 300), **kwargs)


def test_torch_spectrogram_rejects_bad_tensors():
    with pytest.raises(ValueError, match="x must have shape"):
        spectral.torch_spectrogram(torch.zeros(1, 300), n_fft=32, hop_length=8)
    with pytest.raises(ValueError, match="floating"):
        spectral.torch_spectrogram(
            torch.zeros(1, 1, 300, dtype=torch.int64), n_fft=32, hop_length=8
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_spectrogram_on_cuda_equals_cpu(dtype):
    x = torch.as_tensor(_batch((5, 3, 3000), seed=13), dtype=dtype)
    cpu = spectral.torch_spectrogram(x, n_fft=256, hop_length=224, sampling_rate=FS)
    cuda = spectral.torch_spectrogram(x.cuda(), n_fft=256, hop_length=224, sampling_rate=FS)
    assert cuda.device.type == "cuda" and cuda.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=tol, atol=tol * cpu.max().item())


def test_spectral_inputs_never_modified():
    x64 = _batch((3, 2, 300), seed=14)
    x32 = x64.astype(np.float32)[:, :, ::2]  # float32 and non-contiguous
    before64, before32 = x64.copy(), x32.copy()
    for detrend in ("constant", "linear", False):
        spectral.spectrogram(x64, sampling_rate=FS, nperseg=64, detrend=detrend, log=True)
        spectral.spectrogram(x32, sampling_rate=FS, nperseg=33, detrend=detrend)
    xt = torch.from_numpy(x64.copy())
    spectral.torch_spectrogram(xt, n_fft=64, hop_length=16)
    spectral.torch_spectrogram(xt, n_fft=64, hop_length=16, sampling_rate=FS)
    np.testing.assert_array_equal(x64, before64)
    np.testing.assert_array_equal(x32, before32)
    np.testing.assert_array_equal(xt.numpy(), before64)
