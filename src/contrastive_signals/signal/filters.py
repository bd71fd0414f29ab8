"""Batched time-domain filters for signals shaped ``[N, C, L]``.

Every function works on the whole batch at once along the last axis, returns a new
array and leaves its input untouched. Outputs keep the input's floating dtype
(integer input becomes float64); scipy filters compute in float64 before the cast.

Filter designs come from scipy, once per batch. Zero-phase IIR filtering runs in a
numba kernel (:mod:`contrastive_signals.signal.iir`) that equals ``sosfiltfilt``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

import numpy as np
import scipy.signal

from contrastive_signals.signal.iir import sosfiltfilt_rows
from contrastive_signals.signal.polyphase import resample_poly_rows
from contrastive_signals.signal.rowwise import gradient_rows, project_out_rows, zscore_rows

__all__ = [
    "add_derivative_channel",
    "bandpass",
    "derivative",
    "detrend_polynomial",
    "highpass",
    "lowpass",
    "normalize",
    "notch",
    "resample",
    "resampling_factors",
    "zero_phase_sos",
]


# --------------------------------------------------------------------------- helpers


def _float_dtype(x: np.ndarray) -> np.dtype:
    """Floating dtype that the outputs for ``x`` use."""
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


def _check_batch(x: np.ndarray, *, min_length: int = 1) -> np.ndarray:
    """Return ``x`` as an array after checking it is ``[N, C, L]`` with ``L >= min_length``."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {x.shape}")
    if x.shape[-1] < min_length:
        raise ValueError(f"x must have at least {min_length} samples; got {x.shape[-1]}")
    return x


def _check_positive(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    return float(value)


def _check_cutoff(value: float, name: str, sampling_rate: float) -> float:
    """Cutoffs must lie strictly between 0 and the Nyquist frequency."""
    nyquist = sampling_rate / 2
    if not 0 < value < nyquist:
        raise ValueError(
            f"{name}={value} Hz must lie strictly between 0 and the Nyquist frequency "
            f"{nyquist:g} Hz (sampling_rate={sampling_rate:g} / 2)"
        )
    return float(value)


# ------------------------------------------------------------------ derivative


def derivative(
    x: np.ndarray,
    *,
    sampling_rate: float = 1.0,
    method: Literal["gradient", "diff"] = "gradient",
) -> np.ndarray:
    """Time derivative of every channel, in units per second.

    Args:
        x: ``[N, C, L]`` signals, ``L >= 2``.
        sampling_rate: samples per second.
        method: ``"gradient"`` equals ``np.gradient(x, 1 / sampling_rate, axis=-1)``
            (central differences inside, one-sided at the ends); ``"diff"`` is the
            backward difference ``(x[t] - x[t-1]) * sampling_rate`` with 0 at ``t = 0``.

    Returns:
        ``[N, C, L]`` derivative.
    """
    x = _check_batch(x, min_length=2)
    fs = _check_positive(sampling_rate, "sampling_rate")
    n, c, length = x.shape
    if method == "gradient":
        return gradient_rows(x.reshape(n * c, length), fs, _float_dtype(x)).reshape(x.shape)
    if method != "diff":
        raise ValueError(f"method must be 'gradient' or 'diff'; got {method!r}")
    out = np.empty(x.shape, dtype=_float_dtype(x))
    out[..., 0] = 0
    np.subtract(x[..., 1:], x[..., :-1], out=out[..., 1:])
    out[..., 1:] *= fs
    return out


def check_derivative_options(*, scale: float = 1.0, smooth_window: int | None = None,
                             smooth_order: int = 2) -> None:
    """Check the options of :func:`add_derivative_channel` without data.

    Raises:
        ValueError: naming the bad option (``scale``, ``smooth_window``, ``smooth_order``).
    """
    if isinstance(scale, bool) or not isinstance(scale, int | float) \
            or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
    if smooth_window is None:
        return
    if isinstance(smooth_window, bool) or not isinstance(smooth_window, int) \
            or smooth_window < 3 or smooth_window % 2 == 0:
        raise ValueError(f"smooth_window must be an odd integer >= 3 (null: no smoothing); got "
                         f"{smooth_window!r}")
    if isinstance(smooth_order, bool) or not isinstance(smooth_order, int) \
            or not 1 <= smooth_order < smooth_window:
        raise ValueError(f"smooth_order must be an integer with 1 <= smooth_order < "
                         f"smooth_window={smooth_window}; got {smooth_order!r}")


def add_derivative_channel(
    x: np.ndarray,
    *,
    sampling_rate: float = 1.0,
    method: Literal["gradient", "diff"] = "gradient",
    scale: float = 1.0,
    smooth_window: int | None = None,
    smooth_order: int = 2,
) -> np.ndarray:
    """Stack each channel's derivative after the original channels.

    Args:
        x: ``[N, C, L]`` signals.
        sampling_rate, method: as in :func:`derivative` (``method`` only without smoothing).
        scale: factor on the derivative channels (their size relative to the signal's).
        smooth_window, smooth_order: when ``smooth_window`` is set, the derivative of a
            Savitzky-Golay fit (``scipy.signal.savgol_filter(..., deriv=1, mode="interp")``:
            a polynomial of ``smooth_order`` over ``smooth_window`` samples) instead of
            differencing the raw samples; ``L >= smooth_window``.

    Returns:
        ``[N, 2C, L]``: channels ``0..C-1`` are ``x``, ``C..2C-1`` their derivatives.
    """
    check_derivative_options(scale=scale, smooth_window=smooth_window, smooth_order=smooth_order)
    if smooth_window is None:
        d = derivative(x, sampling_rate=sampling_rate, method=method)
    else:
        if method != "gradient":
            raise ValueError(f"method {method!r} does not apply with smooth_window (the "
                             "Savitzky-Golay derivative); leave method at 'gradient'")
        x = _check_batch(x, min_length=smooth_window)
        fs = _check_positive(sampling_rate, "sampling_rate")
        d = scipy.signal.savgol_filter(x, smooth_window, smooth_order, deriv=1, delta=1 / fs,
                                       axis=-1, mode="interp").astype(_float_dtype(x))
    if scale != 1:
        d = d * np.asarray(scale, dtype=d.dtype)
    return np.concatenate([np.asarray(x, dtype=d.dtype), d], axis=1)


# -------------------------------------------------------------------- detrend


def detrend_polynomial(x: np.ndarray, *, order: int = 1) -> np.ndarray:
    """Subtract a least-squares polynomial baseline from every row.

    All ``N * C`` rows share one design (Vandermonde) matrix ``V`` ``[L, order+1]``,
    so one QR factorisation ``V = QR`` solves every least-squares problem at once:
    the fitted baseline is ``Q Q^T x``, removed row by row in a numba kernel. Orders 0 and 1 equal
    ``scipy.signal.detrend(x, type="constant" | "linear")``.

    Args:
        x: ``[N, C, L]`` signals, ``L > order``.
        order: polynomial degree, ``>= 0``.

    Returns:
        ``[N, C, L]`` residual ``x - baseline``.
    """
    if int(order) != order or order < 0:
        raise ValueError(f"order must be a non-negative integer; got {order}")
    order = int(order)
    x = _check_batch(x, min_length=order + 1)
    n, c, length = x.shape
    # Time on [-1, 1] keeps the Vandermonde matrix well conditioned for higher orders.
    t = np.linspace(-1.0, 1.0, length)
    q, _ = np.linalg.qr(np.vander(t, order + 1, increasing=True))  # [L, order+1]
    # Each row's fit and subtraction in one pass while the row is in cache (numba).
    return project_out_rows(x.reshape(n * c, length), q.T, _float_dtype(x)).reshape(x.shape)


# ---------------------------------------------------------------- IIR filtering


def zero_phase_sos(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Forward-backward (zero-phase) IIR filtering of every row at once.

    Args:
        sos: ``[n_sections, 6]`` second-order sections.
        x: ``[N, C, L]`` signals; ``L`` must exceed scipy's padding, ``3 * (2 * n_sections + 1)``.

    Returns:
        ``[N, C, L]`` ``scipy.signal.sosfiltfilt(sos, x, axis=-1)`` in the float dtype of ``x``.
    """
    # scipy runs its recurrence one signal at a time; the numba kernel advances
    # blocks of signals together in vector lanes and threads (see signal/iir.py).
    n, c, length = x.shape
    return sosfiltfilt_rows(sos, x.reshape(n * c, length), _float_dtype(x)).reshape(x.shape)


def bandpass(
    x: np.ndarray,
    *,
    sampling_rate: float,
    low_hz: float,
    high_hz: float,
    order: int = 4,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass filter.

    Equals ``scipy.signal.sosfiltfilt(butter(order, [low_hz, high_hz], "bandpass",
    fs=sampling_rate, output="sos"), x, axis=-1)``; the effective order is doubled
    by the forward-backward pass.

    Args:
        x: ``[N, C, L]`` signals.
        sampling_rate: samples per second.
        low_hz, high_hz: pass band edges, ``0 < low_hz < high_hz < sampling_rate / 2``.
        order: Butterworth order.

    Returns:
        ``[N, C, L]`` filtered signals.
    """
    x = _check_batch(x)
    fs = _check_positive(sampling_rate, "sampling_rate")
    low = _check_cutoff(low_hz, "low_hz", fs)
    high = _check_cutoff(high_hz, "high_hz", fs)
    if not low < high:
        raise ValueError(f"low_hz ({low}) must be below high_hz ({high})")
    sos = scipy.signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return zero_phase_sos(sos, x)


def _butterworth_one_sided(
    x: np.ndarray, *, sampling_rate: float, cutoff_hz: float, order: int, btype: str
) -> np.ndarray:
    """Shared body of :func:`lowpass` and :func:`highpass`."""
    x = _check_batch(x)
    fs = _check_positive(sampling_rate, "sampling_rate")
    cutoff = _check_cutoff(cutoff_hz, "cutoff_hz", fs)
    sos = scipy.signal.butter(order, cutoff, btype=btype, fs=fs, output="sos")
    return zero_phase_sos(sos, x)


def lowpass(x: np.ndarray, *, sampling_rate: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass filter (``sosfiltfilt`` of ``butter(order, cutoff_hz)``).

    Args:
        x: ``[N, C, L]`` signals.
        sampling_rate: samples per second.
        cutoff_hz: ``0 < cutoff_hz < sampling_rate / 2``.
        order: Butterworth order.

    Returns:
        ``[N, C, L]`` filtered signals.
    """
    return _butterworth_one_sided(x, sampling_rate=sampling_rate, cutoff_hz=cutoff_hz,
                                  order=order, btype="lowpass")


def highpass(
    x: np.ndarray, *, sampling_rate: float, cutoff_hz: float, order: int = 4
) -> np.ndarray:
    """Zero-phase Butterworth high-pass filter; arguments and shapes as :func:`lowpass`."""
    return _butterworth_one_sided(x, sampling_rate=sampling_rate, cutoff_hz=cutoff_hz,
                                  order=order, btype="highpass")


def notch(
    x: np.ndarray, *, sampling_rate: float, freq_hz: float, quality: float = 30.0
) -> np.ndarray:
    """Zero-phase notch (band-stop) filter, e.g. to remove 50/60 Hz mains hum.

    Equals ``scipy.signal.filtfilt(*iirnotch(freq_hz, quality, fs=sampling_rate), x,
    axis=-1)``: the notch is one biquad, run as a second-order section.

    Args:
        x: ``[N, C, L]`` signals.
        sampling_rate: samples per second.
        freq_hz: frequency to remove, ``0 < freq_hz < sampling_rate / 2``.
        quality: ``freq_hz`` over the -3 dB bandwidth; higher is narrower.

    Returns:
        ``[N, C, L]`` filtered signals.
    """
    x = _check_batch(x)
    fs = _check_positive(sampling_rate, "sampling_rate")
    freq = _check_cutoff(freq_hz, "freq_hz", fs)
    q = _check_positive(quality, "quality")
    b, a = scipy.signal.iirnotch(freq, q, fs=fs)
    return zero_phase_sos(scipy.signal.tf2sos(b, a), x)


# ---------------------------------------------------------------- normalisation


def normalize(
    x: np.ndarray,
    *,
    scope: Literal["channel", "recording"] = "channel",
    eps: float = 1e-8,
) -> np.ndarray:
    """Z-score: subtract the mean and divide by ``std + eps`` (population std).

    Args:
        x: ``[N, C, L]`` signals.
        scope: ``"channel"`` uses statistics per sample and channel (over ``L``);
            ``"recording"`` per sample over all channels together (over ``C x L``).
        eps: added to the standard deviation so flat signals stay finite.

    Returns:
        ``[N, C, L]`` normalised signals.
    """
    x = _check_batch(x)
    n, c, length = x.shape
    if scope == "channel":
        rows = x.reshape(n * c, length)
    elif scope == "recording":
        rows = x.reshape(n, c * length)
    else:
        raise ValueError(f"scope must be 'channel' or 'recording'; got {scope!r}")
    return zscore_rows(rows, eps, _float_dtype(x)).reshape(x.shape)


# ------------------------------------------------------------------- resampling


def resampling_factors(from_hz: float, to_hz: float) -> tuple[int, int]:
    """Reduced integer ``(up, down)`` with ``to_hz / from_hz == up / down``.

    Raises:
        ValueError: if a rate is not positive or the ratio is not a fraction with a
            denominator below 10,000.
    """
    _check_positive(from_hz, "from_hz")
    _check_positive(to_hz, "to_hz")
    ratio = Fraction(to_hz / from_hz).limit_denominator(10_000)
    if not math.isclose(float(ratio), to_hz / from_hz, rel_tol=1e-9):
        raise ValueError(f"to_hz / from_hz = {to_hz}/{from_hz} is not a simple fraction up/down")
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, *, from_hz: float, to_hz: float) -> np.ndarray:
    """Polyphase resampling: ``scipy.signal.resample_poly(x, up, down, axis=-1)``.

    ``up / down`` is the reduced ratio ``to_hz / from_hz``; the anti-aliasing filter
    is scipy's default (Kaiser-windowed sinc, ``beta = 5``), designed once for the
    whole batch; the polyphase sums run in a numba kernel
    (:func:`contrastive_signals.signal.polyphase.resample_poly_rows`).

    Args:
        x: ``[N, C, L]`` signals sampled at ``from_hz``.
        from_hz, to_hz: old and new sampling rates.

    Returns:
        ``[N, C, ceil(L * up / down)]`` signals sampled at ``to_hz``.
    """
    x = _check_batch(x)
    up, down = resampling_factors(from_hz, to_hz)
    n, c, length = x.shape
    y = resample_poly_rows(x.reshape(n * c, length), up, down)
    return y.reshape(n, c, y.shape[-1]).astype(_float_dtype(x), copy=False)
