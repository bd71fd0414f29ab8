"""Batched discrete wavelet transforms for signals shaped ``[N, C, L]``.

:func:`wavedec` runs a numba kernel (``_wavelet_kernels``) that reproduces
PyWavelets' ``wavedec`` for every row at once, about ten times faster than a loop
of ``pywt.wavedec`` calls (``benchmarks/signal_features.py``); the other functions
wrap PyWavelets with ``axis=-1``, whose C code transforms every row in one call.
"""

from __future__ import annotations

import numpy as np
import pywt

from contrastive_signals.signal._wavelet_kernels import MODE_CODES, wavedec_rows

__all__ = ["check_wavelet_level", "wavedec", "wavelet_features", "waverec"]


def _check_batch(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {x.shape}")
    return x


def _as_wavelet(wavelet: str | pywt.Wavelet) -> pywt.Wavelet:
    if isinstance(wavelet, pywt.Wavelet):
        return wavelet
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise ValueError(
            f"wavelet must be a discrete PyWavelets wavelet (e.g. 'haar', 'db4'); got {wavelet!r}"
        )
    return pywt.Wavelet(wavelet)


def check_wavelet_level(length: int, wavelet: str | pywt.Wavelet, level: int | None) -> int:
    """Decomposition level to use for signals of ``length`` samples.

    Args:
        length: samples per signal.
        wavelet: wavelet name or object.
        level: requested level, or ``None`` for the deepest useful one.

    Returns:
        ``level``, or ``pywt.dwt_max_level(length, wavelet)`` when it is ``None``.

    Raises:
        ValueError: naming ``level`` when it is not in ``1..dwt_max_level``, which
            is where every coefficient still sees at least a full filter of data.
    """
    w = _as_wavelet(wavelet)
    max_level = pywt.dwt_max_level(length, w.dec_len)
    if max_level < 1:
        raise ValueError(
            f"signals of length {length} are too short for wavelet {w.name!r} "
            f"(filter length {w.dec_len}); no decomposition level is useful"
        )
    if level is None:
        return max_level
    if isinstance(level, bool) or int(level) != level or not 1 <= level <= max_level:
        raise ValueError(
            f"level must be an integer in 1..{max_level} (pywt.dwt_max_level for length "
            f"{length} and wavelet {w.name!r}); got {level}"
        )
    return int(level)


def wavedec(
    x: np.ndarray,
    *,
    wavelet: str | pywt.Wavelet = "haar",
    level: int | None = None,
    mode: str = "symmetric",
) -> list[np.ndarray]:
    """Multilevel discrete wavelet decomposition of every channel.

    Real input in the modes ``zero, constant, symmetric, reflect, periodic, smooth,
    antisymmetric, antireflect`` goes through a numba kernel; ``periodization``,
    complex input and odd-length custom filters go to ``pywt.wavedec(axis=-1)``.
    Both give what ``pywt.wavedec`` gives each signal, with PyWavelets' dtypes:
    float16/float32 in, float32 out; other real dtypes, float64 out. The kernel
    adds in float64 where PyWavelets adds float32 in float32, so float32 results
    are at least as accurate and agree with PyWavelets to float32 rounding.

    Args:
        x: ``[N, C, L]`` signals (left unchanged).
        wavelet: discrete wavelet name (``pywt.wavelist(kind="discrete")``) or object.
        level: decomposition depth, ``1..pywt.dwt_max_level(L, wavelet)``; ``None``
            uses the maximum.
        mode: signal extension mode (``pywt.Modes.modes``).

    Returns:
        ``[cA_n, cD_n, ..., cD_1]``, each C-contiguous ``[N, C, L_k]``, as
        ``pywt.wavedec(axis=-1)``. From the kernel they are views into one
        buffer, so the memory is freed when the last of them goes.
    """
    x = _check_batch(x)
    w = _as_wavelet(wavelet)
    level = check_wavelet_level(x.shape[-1], w, level)
    if mode not in pywt.Modes.modes:
        raise ValueError(f"mode must be one of {pywt.Modes.modes}; got {mode!r}")
    if mode not in MODE_CODES or np.iscomplexobj(x) or w.dec_len % 2:
        return pywt.wavedec(x, w, mode=mode, level=level, axis=-1)
    return _wavedec_kernel(x, w, level, mode)


def _wavedec_kernel(x: np.ndarray, w: pywt.Wavelet, level: int, mode: str) -> list[np.ndarray]:
    """:func:`wavedec` of real ``[N, C, L]`` signals by the numba kernel (even ``w.dec_len``)."""
    n, c, length = x.shape
    dtype = np.float32 if x.dtype in (np.float16, np.float32) else np.float64
    rows = np.ascontiguousarray(x, dtype=dtype).reshape(n * c, length)
    filter_len = w.dec_len
    lengths = [length]
    for _ in range(level):
        lengths.append((lengths[-1] + filter_len - 1) // 2)
    coeff_lengths = [lengths[-1], *lengths[:0:-1]]  # cA_n, cD_n, ..., cD_1
    sizes = [n * c * k for k in coeff_lengths]
    offsets = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64)
    # numpy allocates (untouched, huge-page backed) so pages fault in the kernel's threads
    out = np.empty(sum(sizes), dtype=dtype)
    g_lo = np.array(w.dec_lo[::-1], dtype=np.float64)
    g_hi = np.array(w.dec_hi[::-1], dtype=np.float64)
    wavedec_rows(rows, g_lo, g_hi, level, MODE_CODES[mode], out, offsets)
    return [
        out[start : start + size].reshape(n, c, k)
        for start, size, k in zip(offsets, sizes, coeff_lengths, strict=True)
    ]


def waverec(
    coeffs: list[np.ndarray],
    *,
    wavelet: str | pywt.Wavelet = "haar",
    mode: str = "symmetric",
    length: int | None = None,
) -> np.ndarray:
    """Inverse of :func:`wavedec`.

    Args:
        coeffs: ``[cA_n, cD_n, ..., cD_1]``, each ``[N, C, L_k]``.
        wavelet, mode: as used for the decomposition.
        length: original signal length; the reconstruction of an odd-length
            signal has one extra sample, which this trims.

    Returns:
        ``[N, C, L]`` reconstructed signals.
    """
    if not coeffs:
        raise ValueError("coeffs must hold at least the approximation coefficients")
    w = _as_wavelet(wavelet)
    out = pywt.waverec(list(coeffs), w, mode=mode, axis=-1)
    if length is not None:
        if not 1 <= length <= out.shape[-1]:
            raise ValueError(f"length must be in 1..{out.shape[-1]}; got {length}")
        out = out[..., :length]
    return out


def wavelet_features(
    x: np.ndarray,
    *,
    wavelet: str | pywt.Wavelet = "haar",
    level: int | None = None,
    mode: str = "symmetric",
) -> np.ndarray:
    """All wavelet coefficients of each channel concatenated into one vector.

    Args:
        x: ``[N, C, L]`` signals.
        wavelet, level, mode: as in :func:`wavedec`.

    Returns:
        ``[N, C, sum_k L_k]``: ``cA_n, cD_n, ..., cD_1`` side by side.
    """
    return np.concatenate(wavedec(x, wavelet=wavelet, level=level, mode=mode), axis=-1)
