"""Per-row derivative, z-score and polynomial detrending, compiled with numba.

Both are a few arithmetic operations per sample, so numpy's whole-array passes spend
their time moving the batch through memory (one pass per operation and temporary).
These kernels do each row in one or two passes while it sits in cache, rows spread
over threads, and write straight into an output that numpy allocated (huge pages,
faulted in by the threads that write them).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gradient_rows", "project_out_rows", "zscore_rows"]


@numba.njit(cache=True, inline="always")
def _dot(a, b):
    """``sum(a * b)`` with four running sums.

    A single running sum makes every addition wait for the previous one; four
    independent ones keep the adder busy and round no worse (shorter chains).
    """
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    quads = n - n % 4
    for t in range(0, quads, 4):
        s0 += a[t] * b[t]
        s1 += a[t + 1] * b[t + 1]
        s2 += a[t + 2] * b[t + 2]
        s3 += a[t + 3] * b[t + 3]
    for t in range(quads, n):
        s0 += a[t] * b[t]
    return (s0 + s1) + (s2 + s3)


@numba.njit(cache=True, inline="always")
def _squared_deviations(a, centre):
    """``sum((a - centre) ** 2)`` with four running sums (see :func:`_dot`)."""
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    quads = n - n % 4
    for t in range(0, quads, 4):
        d0, d1 = a[t] - centre, a[t + 1] - centre
        d2, d3 = a[t + 2] - centre, a[t + 3] - centre
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
    for t in range(quads, n):
        d0 = a[t] - centre
        s0 += d0 * d0
    return (s0 + s1) + (s2 + s3)


@numba.njit(cache=True, inline="always")
def _sum(a):
    """``sum(a)`` with four running sums (see :func:`_dot`)."""
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    quads = n - n % 4
    for t in range(0, quads, 4):
        s0 += a[t]
        s1 += a[t + 1]
        s2 += a[t + 2]
        s3 += a[t + 3]
    for t in range(quads, n):
        s0 += a[t]
    return (s0 + s1) + (s2 + s3)


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
        mean = _sum(row) / length
        # Two passes (mean first, then squared deviations) as numpy's std does: the
        # one-pass sum-of-squares formula loses digits when the mean is large.
        square_sum = _squared_deviations(row, mean)
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


@numba.njit(cache=True, parallel=True)
def _project_out_kernel(rows, basis, out):  # pragma: no cover - compiled
    n_rows, length = rows.shape
    n_basis = basis.shape[0]
    for r in numba.prange(n_rows):
        row = rows[r]
        dst = out[r]
        for t in range(length):
            dst[t] = row[t]
        for k in range(n_basis):
            # Modified Gram-Schmidt: project what is left, not the original row,
            # which keeps the residual orthogonal to the basis to rounding.
            coef = _dot(dst, basis[k])
            for t in range(length):
                dst[t] -= coef * basis[k, t]


def project_out_rows(rows: np.ndarray, basis: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    """Remove from every row its least-squares fit by the span of ``basis``.

    Args:
        rows: ``[R, L]`` signals.
        basis: ``[K, L]`` orthonormal rows (e.g. ``Q.T`` of a QR factorisation).
        out_dtype: floating dtype of the result (the arithmetic is float64).

    Returns:
        ``[R, L]`` residuals ``row - basis.T @ (basis @ row)``.
    """
    rows = np.ascontiguousarray(rows)
    basis = np.ascontiguousarray(basis, dtype=np.float64)
    # The residual is built in float64 in the kernel's own rows; only then cast.
    work = np.empty(rows.shape, dtype=np.float64)
    _project_out_kernel(rows, basis, work)
    return work if out_dtype == np.float64 else work.astype(out_dtype)
