"""Zero-phase IIR filtering of many signals at once, compiled with numba.

``scipy.signal.sosfiltfilt`` runs its C loop one signal after another, and each step
of an IIR recurrence waits for the previous one, so a single signal cannot use the
CPU's vector lanes. Independent signals can: this kernel copies a block of rows into
a time-major buffer ``[T, BLOCK]`` and advances all of them one sample at a time, the
innermost loop running over rows (contiguous, one AVX lane per signal). Blocks run in
parallel threads. Arithmetic, operation order, padding and initial conditions are
those of ``sosfiltfilt`` (odd extension, ``sosfilt_zi`` scaled by the edge sample), so
the result equals scipy's to rounding.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.signal

__all__ = ["sosfiltfilt_rows", "sosfiltfilt_padding"]

# Rows per block: 32 float64 lanes are 4 AVX-512 vectors per section update, and a
# [T, 32] buffer for T ~ 3,000 (~770 KB) stays in a core's L2 cache.
BLOCK = 32
# Samples per tile of the row <-> time-major transposes (TILE x BLOCK float64 = 4 KB).
TILE = 16
# Largest per-thread buffer the kernel may use; longer signals (whole recordings)
# go to scipy, whose per-call overhead is negligible next to their length.
MAX_BUFFER_BYTES = 16 * 2**20


def sosfiltfilt_padding(sos: np.ndarray) -> int:
    """Samples of odd extension ``sosfiltfilt`` adds at each end (its default ``padlen``).

    Args:
        sos: ``[n_sections, 6]`` second-order sections.
    """
    n_sections = sos.shape[0]
    ntaps = 2 * n_sections + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * ntaps


@numba.njit(cache=True, inline="always")
def _run_sections(buf, t, sos, z0, z1):
    """One time step of every section for every lane of ``buf[t]``, in place.

    Same operation order as scipy's ``_sosfilt`` so the results agree bit for bit
    where the compiler does not fuse multiply-adds.
    """
    lanes = buf.shape[1]
    for s in range(sos.shape[0]):
        b0, b1, b2 = sos[s, 0], sos[s, 1], sos[s, 2]
        a1, a2 = sos[s, 4], sos[s, 5]
        for j in range(lanes):
            x_cur = buf[t, j]
            x_new = b0 * x_cur + z0[s, j]
            z0[s, j] = b1 * x_cur - a1 * x_new + z1[s, j]
            z1[s, j] = b2 * x_cur - a2 * x_new
            buf[t, j] = x_new


@numba.njit(cache=True)
def _start_state(zi, edge_samples, z0, z1):
    """Initial conditions ``zi * x_edge`` for every section and lane."""
    for s in range(zi.shape[0]):
        for j in range(edge_samples.shape[0]):
            z0[s, j] = zi[s, 0] * edge_samples[j]
            z1[s, j] = zi[s, 1] * edge_samples[j]


@numba.njit(cache=True, parallel=True)
def _sosfiltfilt_kernel(rows, sos, zi, edge, out):  # pragma: no cover - compiled
    n_rows, length = rows.shape
    n_sections = sos.shape[0]
    total = length + 2 * edge
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    for block in numba.prange(n_blocks):
        first_row = block * BLOCK
        used = min(BLOCK, n_rows - first_row)
        buf = np.zeros((total, BLOCK))
        # The signal, transposed in tiles of TILE samples x BLOCK rows so that both
        # the row reads and the buffer writes stay within a few cache lines.
        for t0 in range(0, length, TILE):
            t1 = min(length, t0 + TILE)
            for j in range(used):
                row = rows[first_row + j]
                for t in range(t0, t1):
                    buf[edge + t, j] = row[t]
        # Odd extension, as scipy's odd_ext: 2 * x[0] - x[edge..1] before the
        # signal and 2 * x[-1] - x[-2..-edge-1] after it.
        for j in range(used):
            row = rows[first_row + j]
            head, tail = row[0], row[length - 1]
            for k in range(edge):
                buf[k, j] = 2.0 * head - row[edge - k]
                buf[edge + length + k, j] = 2.0 * tail - row[length - 2 - k]
        z0 = np.empty((n_sections, BLOCK))
        z1 = np.empty((n_sections, BLOCK))
        _start_state(zi, buf[0], z0, z1)
        for t in range(total):
            _run_sections(buf, t, sos, z0, z1)
        _start_state(zi, buf[total - 1], z0, z1)
        for t in range(total - 1, -1, -1):
            _run_sections(buf, t, sos, z0, z1)
        for t0 in range(0, length, TILE):
            t1 = min(length, t0 + TILE)
            for j in range(used):
                dst = out[first_row + j]
                for t in range(t0, t1):
                    dst[t] = buf[edge + t, j]


def sosfiltfilt_rows(sos: np.ndarray, rows: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, rows, axis=-1)`` with scipy's default padding.

    Args:
        sos: ``[n_sections, 6]`` second-order sections with ``a0 == 1``.
        rows: ``[R, L]`` real signals, ``L`` longer than :func:`sosfiltfilt_padding`.
        out_dtype: floating dtype of the result (the arithmetic is float64).

    Returns:
        ``[R, L]`` zero-phase filtered rows.
    """
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or not np.all(sos[:, 3] == 1.0):
        raise ValueError(f"sos must be [n_sections, 6] with a0 == 1; got shape {sos.shape}")
    edge = sosfiltfilt_padding(sos)
    length = rows.shape[-1]
    if length <= edge:
        raise ValueError(
            f"signals must be longer than the filter's padding of {edge} samples "
            f"(3 x its {edge // 3} taps); got length {length}"
        )
    if (length + 2 * edge) * BLOCK * 8 > MAX_BUFFER_BYTES:
        return scipy.signal.sosfiltfilt(sos, rows, axis=-1).astype(out_dtype, copy=False)
    zi = np.ascontiguousarray(scipy.signal.sosfilt_zi(sos))
    rows = np.ascontiguousarray(rows)
    # numpy allocates large arrays with huge pages; the kernel's threads then fault
    # them in in parallel while writing.
    out = np.empty(rows.shape, dtype=out_dtype)
    _sosfiltfilt_kernel(rows, sos, zi, edge, out)
    return out
