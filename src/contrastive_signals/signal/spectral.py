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

from typing import Literal

import numpy as np
import scipy.fft
import scipy.signal
import torch

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
    window: str | tuple = "hann",
    nperseg: int = 256,
    noverlap: int | None = None,
    detrend: Literal["constant", "linear"] | Literal[False] = "constant",
    log: bool = False,
    eps: float = 1e-12,
) -> dict[str, np.ndarray]:
    """Short-time power spectral density of every channel.

    One ``scipy.signal.spectrogram(..., axis=-1)`` call over the whole batch with
    ``scaling="density"`` and a one-sided spectrum.

    Args:
        x: ``[N, C, L]`` real signals, ``L >= nperseg``.
        sampling_rate: samples per second.
        window: any ``scipy.signal.get_window`` spec (periodic window).
        nperseg: samples per segment.
        noverlap: overlapping samples between segments; ``None`` uses scipy's
            spectrogram default ``nperseg // 8``.
        detrend: per-segment detrending before the window, as in scipy
            (``"constant"`` removes each segment's mean); ``False`` for none.
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
    if not 1 <= nperseg <= length:
        raise ValueError(f"nperseg must be between 1 and the signal length {length}; got {nperseg}")
    if noverlap is None:
        noverlap = nperseg // 8
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"noverlap must satisfy 0 <= noverlap < nperseg; got {noverlap}")
    frequencies, times, power = scipy.signal.spectrogram(
        x,
        fs=fs,
        window=window,
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
    window: str | tuple = "hann",
    sampling_rate: float | None = None,
) -> torch.Tensor:
    """One-sided power spectrogram with ``torch.stft`` on the tensor's own device.

    Segments start every ``hop_length`` samples with no centring or padding
    (``center=False``), so segment ``t`` covers samples ``[t * hop, t * hop + n_fft)``
    exactly as in scipy. The window comes from ``scipy.signal.get_window`` so the
    same name gives the same (periodic) window on both paths.

    Scaling: by default the raw ``|STFT|^2``. With ``sampling_rate`` given, the result
    is divided by ``sampling_rate * sum(window ** 2)`` and the bins other than DC
    (and Nyquist for even ``n_fft``) are doubled, which equals
    ``spectrogram(x, sampling_rate=..., window=window, nperseg=n_fft,
    noverlap=n_fft - hop_length, detrend=False)["power"]``.

    Args:
        x: ``[N, C, L]`` real floating tensor on any device, ``L >= n_fft``.
        n_fft: samples per segment.
        hop_length: samples between segment starts, ``1 <= hop_length <= n_fft``.
        window: any ``scipy.signal.get_window`` spec.
        sampling_rate: when given, return scipy's one-sided density scaling.

    Returns:
        ``[N, C, F, T]`` tensor on ``x.device`` with ``F = n_fft // 2 + 1`` and
        ``T = 1 + (L - n_fft) // hop_length``.
    """
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor; got {x.dtype}")
    n, c, length = x.shape
    if not 1 <= n_fft <= length:
        raise ValueError(f"n_fft must be between 1 and the signal length {length}; got {n_fft}")
    if not 1 <= hop_length <= n_fft:
        raise ValueError(f"hop_length must be between 1 and n_fft={n_fft}; got {hop_length}")
    win_np = scipy.signal.get_window(window, n_fft)
    win = torch.as_tensor(win_np, dtype=x.dtype, device=x.device)
    stft = torch.stft(
        x.reshape(n * c, length),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=n_fft,
        window=win,
        center=False,
        onesided=True,
        return_complex=True,
    )  # [N*C, F, T]
    power = stft.real.square() + stft.imag.square()
    if sampling_rate is not None:
        fs = _check_sampling_rate(sampling_rate)
        power = power / (fs * float(np.sum(win_np**2)))
        # One-sided density: fold negative-frequency power onto the positive bins.
        last = -1 if n_fft % 2 == 0 else power.shape[1]
        power[:, 1:last] *= 2
    return power.reshape(n, c, power.shape[1], power.shape[2])
