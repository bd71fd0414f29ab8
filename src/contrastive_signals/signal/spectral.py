"""Batched spectral features (FFT, spectrograms) for signals shaped ``[N, C, L]``.

Each function transforms the whole batch along the last axis in one call and never
changes its input. NumPy outputs keep the input's floating precision (integer input
is treated as float64).

Scaling conventions:

- :func:`fft_features` returns the raw DFT magnitude ``|X[k]|`` (numpy's unnormalised
  ``rfft``/``fft``), not an amplitude spectrum: a sine of amplitude ``A`` on an exact
  bin shows ``A * L / 2``.
- :func:`spectrogram` returns scipy's power spectral density (``scaling="density"``),
  one-sided bins doubled.
- :func:`torch_spectrogram` returns the raw ``|STFT|^2`` unless ``sampling_rate`` is
  given, in which case it applies the same density scaling as :func:`spectrogram`
  with ``detrend=False``, so the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.fft
import scipy.signal
import torch

from contrastive_signals.signal import _spectral_kernels

__all__ = ["fft_features", "spectrogram", "torch_spectrogram"]


def _check_batch(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {x.shape}")
    if x.shape[-1] < 1:
        raise ValueError("x must have at least one sample")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _check_sampling_rate(sampling_rate: float) -> float:
    if not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be > 0; got {sampling_rate}")
    return float(sampling_rate)


def fft_features(
    x: np.ndarray,
    *,
    sampling_rate: float,
    return_phase: bool = False,
    one_sided: bool = True,
) -> dict[str, np.ndarray]:
    """Magnitude (and optionally phase) of the DFT of every channel.

    Args:
        x: ``[N, C, L]`` real signals.
        sampling_rate: samples per second, used for the frequency axis.
        return_phase: also return the phase angle in radians, ``(-pi, pi]``.
        one_sided: ``True`` keeps the ``F = L // 2 + 1`` non-negative frequencies
            (``rfft``); ``False`` keeps all ``F = L`` bins in ``np.fft.fft`` order.

    Returns:
        ``{"magnitude": [N, C, F], "frequencies": [F]}`` in Hz, plus
        ``"phase": [N, C, F]`` when ``return_phase``. Magnitudes are unnormalised
        (see the module docstring).
    """
    x = _check_batch(x)
    fs = _check_sampling_rate(sampling_rate)
    length = x.shape[-1]
    # scipy.fft matches numpy.fft bin for bin and can split a batch across threads.
    if one_sided:
        spectrum = scipy.fft.rfft(x, axis=-1, workers=-1)
        frequencies = np.fft.rfftfreq(length, d=1.0 / fs)
    else:
        spectrum = scipy.fft.fft(x, axis=-1, workers=-1)
        frequencies = np.fft.fftfreq(length, d=1.0 / fs)
    out = {"magnitude": np.abs(spectrum), "frequencies": frequencies}
    if return_phase:
        out["phase"] = np.angle(spectrum)
    return out


def spectrogram(
    x: np.ndarray,
    *,
    sampling_rate: float,
    window: str | tuple | np.ndarray = "hann",
    nperseg: int = 256,
    noverlap: int | None = None,
    detrend: Literal["constant", "linear"] | Literal[False] | Callable = "constant",
    log: bool = False,
    eps: float = 1e-12,
) -> dict[str, np.ndarray]:
    """Short-time power spectral density of every channel.

    Equals ``scipy.signal.spectrogram(x[n, c], fs=sampling_rate, window=window,
    nperseg=nperseg, noverlap=noverlap, detrend=detrend)`` for every ``n, c``
    (``scaling="density"``, one-sided), including its dtype (float32 in, float32 out).
    Detrending "constant", "linear" or none runs in compiled kernels over blocks of
    rows on several threads (see ``_spectral_kernels``); a callable ``detrend`` and
    long-double input go through scipy.

    Args:
        x: ``[N, C, L]`` real signals, ``L >= nperseg``.
        sampling_rate: samples per second.
        window: any ``scipy.signal.get_window`` spec (periodic window), or the
            ``[nperseg]`` window values themselves.
        nperseg: samples per segment.
        noverlap: overlapping samples between segments; ``None`` uses scipy's
            spectrogram default ``nperseg // 8``.
        detrend: per-segment detrending before the window, as in scipy
            (``"constant"`` removes each segment's mean, ``"linear"`` its
            least-squares line); ``False`` for none; or a function of a
            ``[..., nperseg]`` array.
        log: return ``10 * log10(power + eps)`` (decibels) instead of power.
        eps: floor added before the logarithm so silent segments stay finite.

    Returns:
        ``{"power": [N, C, F, T], "frequencies": [F], "times": [T]}`` with
        ``F = nperseg // 2 + 1``, ``T = 1 + (L - nperseg) // (nperseg - noverlap)``;
        times are segment centres in seconds.
    """
    x = _check_batch(x)
    fs = _check_sampling_rate(sampling_rate)
    length = x.shape[-1]
    nperseg = _check_int("nperseg", nperseg)
    if not 1 <= nperseg <= length:
        raise ValueError(f"nperseg must be between 1 and the signal length {length}; got {nperseg}")
    noverlap = nperseg // 8 if noverlap is None else _check_int("noverlap", noverlap)
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"noverlap must satisfy 0 <= noverlap < nperseg; got {noverlap}")
    win = _window_values(window, nperseg)
    detrend_code = _detrend_code(detrend, _spectral_kernels.DETREND_CODES)
    # scipy computes in single precision for float16/float32 input, double for float64.
    dtype = np.result_type(x.dtype, np.float32)
    if detrend_code is None or dtype not in (np.float32, np.float64):
        return _scipy_spectrogram(x, fs, win, nperseg, noverlap, detrend, log, eps)

    n, c = x.shape[:2]
    step = nperseg - noverlap
    n_segments = 1 + (length - nperseg) // step
    n_freqs = nperseg // 2 + 1
    win = win.astype(dtype)
    gains = _density_gains(win, fs)
    power = np.empty((n * c, n_freqs, n_segments), dtype=dtype)
    _spectral_kernels.spectrogram_rows(
        x.reshape(n * c, length).astype(dtype, copy=False),
        window=win,
        step=step,
        detrend=detrend_code,
        gains=gains,
        log=bool(log),
        eps=float(eps),
        out=power,
    )
    return {
        "power": power.reshape(n, c, n_freqs, n_segments),
        "frequencies": scipy.fft.rfftfreq(nperseg, 1 / fs),
        "times": np.arange(nperseg / 2, length - nperseg / 2 + 1, step) / fs,
    }


def _density_gains(window: np.ndarray, sampling_rate: float) -> np.ndarray:
    """``[F]`` factor per one-sided bin, in ``window``'s dtype, for ``F = len(window) // 2 + 1``.

    scipy's density scale ``1 / (fs * sum(w^2))``, doubled on the bins that stand for
    a negative frequency too: all but DC and, for an even window length, Nyquist.
    """
    n_fft = window.shape[0]
    gains = np.full(n_fft // 2 + 1, 2.0 / (sampling_rate * np.sum(window * window)),
                    dtype=window.dtype)
    gains[0] /= 2
    if n_fft % 2 == 0:
        gains[-1] /= 2
    return gains


def _detrend_code(detrend: object, codes: dict) -> int | None:
    """The kernel's code for ``detrend``; ``None`` for a callable (left to scipy)."""
    if callable(detrend):
        return None
    if isinstance(detrend, (str, bool, type(None))) and detrend in codes:
        return codes[detrend]
    raise ValueError(f"detrend must be 'constant', 'linear', False or a callable; got {detrend!r}")


def _check_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    return int(value)


def _window_values(window: str | tuple | np.ndarray, nperseg: int) -> np.ndarray:
    """``[nperseg]`` float64 window from a ``get_window`` spec or explicit values."""
    if isinstance(window, (str, tuple)):
        return scipy.signal.get_window(window, nperseg)
    values = np.asarray(window, dtype=np.float64)
    if values.shape != (nperseg,):
        raise ValueError(
            f"window values must have shape ({nperseg},) to match nperseg; got {values.shape}"
        )
    return values


def _scipy_spectrogram(x, fs, win, nperseg, noverlap, detrend, log, eps) -> dict[str, np.ndarray]:
    """The whole batch through one ``scipy.signal.spectrogram`` call (rare options)."""
    frequencies, times, power = scipy.signal.spectrogram(
        x,
        fs=fs,
        window=win,
        nperseg=nperseg,
        noverlap=noverlap,
        detrend=detrend,
        return_onesided=True,
        scaling="density",
        mode="psd",
        axis=-1,
    )
    if log:
        power = 10.0 * np.log10(power + eps)
    return {"power": power, "frequencies": frequencies, "times": times}


def torch_spectrogram(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: str | tuple | np.ndarray = "hann",
    sampling_rate: float | None = None,
) -> torch.Tensor:
    """One-sided power spectrogram with ``torch.fft.rfft`` on the tensor's own device.

    Segments start every ``hop_length`` samples with no centring or padding, so
    segment ``t`` covers samples ``[t * hop, t * hop + n_fft)`` exactly as in scipy
    (and as ``torch.stft(..., center=False)``). The window comes from
    ``scipy.signal.get_window`` so the same name gives the same (periodic) window on
    both paths.

    Scaling: by default the raw ``|STFT|^2``. With ``sampling_rate`` given, the result
    is divided by ``sampling_rate * sum(window ** 2)`` and the bins other than DC
    (and Nyquist for even ``n_fft``) are doubled, which equals
    ``spectrogram(x, sampling_rate=..., window=window, nperseg=n_fft,
    noverlap=n_fft - hop_length, detrend=False)["power"]``.

    The batch goes through in blocks of rows (cache-sized on the CPU, large on an
    accelerator): each block's segments are a strided view of the input, windowed
    into one scratch buffer, transformed, and their power written straight into the
    ``[N, C, F, T]`` result. Inputs that require grad take a plain differentiable
    path instead.

    Args:
        x: ``[N, C, L]`` real floating tensor on any device, ``L >= n_fft``.
        n_fft: samples per segment.
        hop_length: samples between segment starts, ``1 <= hop_length <= n_fft``.
        window: any ``scipy.signal.get_window`` spec, or the ``[n_fft]`` window
            values themselves.
        sampling_rate: when given, return scipy's one-sided density scaling.

    Returns:
        ``[N, C, F, T]`` tensor on ``x.device`` in ``x.dtype`` with
        ``F = n_fft // 2 + 1`` and ``T = 1 + (L - n_fft) // hop_length``.
    """
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor; got {x.dtype}")
    n, c, length = x.shape
    n_fft = _check_int("n_fft", n_fft)
    hop_length = _check_int("hop_length", hop_length)
    if not 1 <= n_fft <= length:
        raise ValueError(f"n_fft must be between 1 and the signal length {length}; got {n_fft}")
    if not 1 <= hop_length <= n_fft:
        raise ValueError(f"hop_length must be between 1 and n_fft={n_fft}; got {hop_length}")
    win_np = _window_values(window, n_fft)
    win = torch.as_tensor(win_np, dtype=x.dtype, device=x.device)
    rows = x.reshape(n * c, length)
    n_segments = 1 + (length - n_fft) // hop_length
    n_freqs = n_fft // 2 + 1
    gains = None
    if sampling_rate is not None:
        fs = _check_sampling_rate(sampling_rate)
        # Applied to the power, not folded (as its root) into the window: that would
        # save a pass but perturbs the FFT's input, so bins that nearly cancel drift
        # ~1e-11 relative from scipy instead of ~1e-12.
        gains_np = _density_gains(win_np, fs)[:, None]  # [F, 1] against [.., F, T]
        gains = torch.as_tensor(gains_np, dtype=x.dtype, device=x.device)

    if torch.is_grad_enabled() and x.requires_grad:
        spectrum = torch.view_as_real(torch.fft.rfft(rows.unfold(-1, n_fft, hop_length) * win))
        power = spectrum.square().sum(-1).transpose(1, 2)  # [N*C, F, T]
        if gains is not None:
            power = power * gains
        return power.reshape(n, c, n_freqs, n_segments)

    power = _empty_result((n * c, n_freqs, n_segments), like=x)
    block_bytes = _TORCH_CPU_BLOCK_BYTES if x.device.type == "cpu" else _TORCH_DEVICE_BLOCK_BYTES
    block_rows = max(1, block_bytes // (n_segments * n_fft * x.element_size()))
    segments = torch.empty(
        (min(block_rows, n * c), n_segments, n_fft), dtype=x.dtype, device=x.device
    )
    for start in range(0, n * c, block_rows):
        stop = min(start + block_rows, n * c)
        block = segments[: stop - start]
        torch.mul(rows[start:stop].unfold(-1, n_fft, hop_length), win, out=block)
        squares = torch.view_as_real(torch.fft.rfft(block)).square_()  # [rows, T, F, 2]
        # re^2 + im^2 written through a [rows, T, F] view of the [rows, F, T] result
        # (complex .abs() would take a slow hypot per bin).
        torch.add(squares[..., 0], squares[..., 1], out=power[start:stop].transpose(1, 2))
        if gains is not None:
            power[start:stop].mul_(gains)
    return power.reshape(n, c, n_freqs, n_segments)


# Segments windowed per block in torch_spectrogram. On the CPU ~8 MiB: every op of a
# block is split over torch's threads, so a thread's share of segments, spectrum and
# result stays near its L2 cache, while blocks stay few (5 ops, each ending in a
# barrier of the OpenMP threads, per block): barriers cost a scheduler time slice
# each when another process holds a core and OpenMP threads spin (the default wait
# policy). On an accelerator large blocks launch few kernels.
_TORCH_CPU_BLOCK_BYTES = 8 * 1024 * 1024
_TORCH_DEVICE_BLOCK_BYTES = 256 * 1024 * 1024


def _empty_result(shape: tuple[int, ...], *, like: torch.Tensor) -> torch.Tensor:
    """Uninitialised tensor on ``like``'s device and dtype.

    On the CPU a numpy allocation (which asks for transparent huge pages) backs it:
    faulting in a large result page by page costs about as much as computing it.
    """
    if like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64):
        numpy_dtype = np.float32 if like.dtype == torch.float32 else np.float64
        return torch.from_numpy(np.empty(shape, dtype=numpy_dtype))
    return torch.empty(shape, dtype=like.dtype, device=like.device)
