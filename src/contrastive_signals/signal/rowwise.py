"""Per-row derivative and z-score, compiled with numba.

Both are a few arithmetic operations per sample, so numpy's whole-array passes spend
their time moving the batch through memory (one pass per operation and temporary).
These kernels do each row in one or two passes while it sits in cache, rows spread
over threads, and write straight into an output that numpy allocated (huge pages,
faulted in by the threads that write them).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gradient_rows", "zscore_rows"]


@numba.njit(cache=True, parallel=True)
def _gradient_kernel(rows, half_rate, rate, out):  # pragma: no cover - compiled
    n_rows, length = rows.shape
    for r in numba.prange(n_rows):
        row = rows[r]
        dst = out[r]
        dst[0] = (row[1] - row[0]) * rate
        for t in range(1, length - 1):
            dst[t] = (row[t + 1] - row[t - 1]) * half_rate
        dst[length - 1] = (row[length - 1] - row[length - 2]) * rate


def gradient_rows(rows: np.ndarray, sampling_rate: float, out_dtype: np.dtype) -> np.ndarray:
    """``np.gradient(rows, 1 / sampling_rate, axis=-1)``: central differences inside,
    one-sided at the two ends.

    Args:
        rows: ``[R, L]`` signals, ``L >= 2``.
        sampling_rate: samples per second (> 0, checked by the caller).
        out_dtype: floating dtype of the result.

    Returns:
        ``[R, L]`` derivative in units per second.
    """
    rows = np.ascontiguousarray(rows)
    out = np.empty(rows.shape, dtype=out_dtype)
    _gradient_kernel(rows, sampling_rate / 2, float(sampling_rate), out)
    return out


@numba.njit(cache=True, parallel=True)
def _zscore_kernel(rows, eps, out):  # pragma: no cover - compiled
    n_rows, length = rows.shape
    for r in numba.prange(n_rows):
        row = rows[r]
        total = 0.0
        for t in range(length):
            total += row[t]
        mean = total / length
        # Two passes (mean first, then squared deviations) as numpy's std does: the
        # one-pass sum-of-squares formula loses digits when the mean is large.
        square_sum = 0.0
        for t in range(length):
            deviation = row[t] - mean
            square_sum += deviation * deviation
        scale = 1.0 / (np.sqrt(square_sum / length) + eps)
        dst = out[r]
        for t in range(length):
            dst[t] = (row[t] - mean) * scale


def zscore_rows(rows: np.ndarray, eps: float, out_dtype: np.dtype) -> np.ndarray:
    """``(row - row.mean()) / (row.std() + eps)`` for every row, statistics in float64.

    Args:
        rows: ``[R, L]`` signals.
        eps: added to the (population) standard deviation.
        out_dtype: floating dtype of the result.

    Returns:
        ``[R, L]`` normalised rows.
    """
    rows = np.ascontiguousarray(rows)
    out = np.empty(rows.shape, dtype=out_dtype)
    _zscore_kernel(rows, float(eps), out)
    return out
