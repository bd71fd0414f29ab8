"""Polyphase resampling of many signals at once, compiled with numba.

``scipy.signal.resample_poly`` upsamples by ``up`` (inserting zeros), low-pass
filters and keeps every ``down``-th sample. Only the taps that meet a non-zero
upsampled sample contribute, so each output is a short dot product:

    ``y[k] = sum_j taps[p, j] * x[n - j]``, with ``c = k * down + half_len``,
    ``n = c // up`` (newest input sample used) and ``p = c % up`` (filter phase),

where ``taps[p, j] = h[p + j * up]`` and ``h`` is scipy's Kaiser-windowed sinc of
``2 * half_len + 1`` taps times ``up``. Samples outside the signal are zero (scipy's
default ``padtype="constant"``).

Vectorising one dot product would reorder its sum; instead the kernel makes every
tap a long, contiguous multiply-add that the compiler vectorises as written:

- Rows go in blocks of ``BLOCK``, time-major, so one time step of a block is
  ``BLOCK`` contiguous lanes.
- Outputs ``k = r + q * up`` (``q = 0, 1, ...``) share the phase and step through the
  input ``down`` samples at a time. Splitting the input into ``down`` streams
  (``stream s`` holds samples ``s, s + down, ...``) makes the inputs that one tap
  meets for ``Q`` consecutive such outputs a contiguous ``[Q, BLOCK]`` slice. Each
  tap is then one multiply-add over ``Q * BLOCK`` numbers, with the taps unrolled by
  eight so the accumulators are loaded and stored once per eight taps.

Each output adds its taps in the order ``j = 0, 1, 2, ...`` in float64 (no
fastmath), so the result equals scipy's to ~1e-15 relative. Long signals go in
windows of the time axis so the buffers stay in cache; threads take whole row blocks.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numba
import numpy as np
import numpy.typing
import scipy.signal

__all__ = ["polyphase_taps", "resample_poly_rows"]

# Rows per block (vector lanes). Outputs per phase per step: each tap is a
# multiply-add over OUTPUTS_PER_PHASE * BLOCK = 512 float64 (4 KB, in L1).
BLOCK = 32
OUTPUTS_PER_PHASE = 16
# Input samples per window of the time axis: the stream buffer, ~(window + taps) *
# BLOCK float64 (~1 MB), stays in a core's L2 cache.
WINDOW_INPUT_SAMPLES = 4096


def _check_factor(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def polyphase_taps(
    up: int, down: int, dtype: np.typing.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray, int]:
    """scipy's default ``resample_poly`` filter, split into its ``up`` phases.

    Args:
        up, down: coprime resampling factors.
        dtype: dtype of the signals; scipy rounds the taps to a floating input dtype
            before scaling them by ``up``, so the same is done here.

    Returns:
        ``(taps, n_taps, half_len)``: ``taps`` ``[up, max(n_taps)]`` float64, row ``p``
        holding ``h[p], h[p + up], ...`` zero-padded; ``n_taps`` ``[up]`` int64, the
        number of taps of each phase; ``half_len`` the filter's half length.
    """
    dtype = np.dtype(dtype)
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = scipy.signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    # As scipy: cast to the input's float dtype, then scale in that dtype.
    h = np.asarray(h, dtype=dtype if np.issubdtype(dtype, np.floating) else np.float64)
    h = (h * h.dtype.type(up)).astype(np.float64)
    n_taps = np.array([(2 * half_len - p) // up + 1 for p in range(up)], dtype=np.int64)
    taps = np.zeros((up, int(n_taps.max())))
    for p in range(up):
        taps[p, : n_taps[p]] = h[p::up]
    return taps, n_taps, half_len


@numba.njit(cache=True)
def _multiply_add_taps(acc, streams, starts, h, n_taps):  # pragma: no cover - compiled
    """``acc += sum_j h[j] * streams[starts[j]:starts[j] + len(acc)]``, ``j < n_taps``.

    Unrolled by eight taps: each accumulator is loaded and stored once per eight
    taps, and the additions keep the order ``j = 0, 1, 2, ...``.
    """
    size = acc.shape[0]
    j = 0
    while j + 8 <= n_taps:
        h0, h1, h2, h3 = h[j], h[j + 1], h[j + 2], h[j + 3]
        h4, h5, h6, h7 = h[j + 4], h[j + 5], h[j + 6], h[j + 7]
        x0 = streams[starts[j]:starts[j] + size]
        x1 = streams[starts[j + 1]:starts[j + 1] + size]
        x2 = streams[starts[j + 2]:starts[j + 2] + size]
        x3 = streams[starts[j + 3]:starts[j + 3] + size]
        x4 = streams[starts[j + 4]:starts[j + 4] + size]
        x5 = streams[starts[j + 5]:starts[j + 5] + size]
        x6 = streams[starts[j + 6]:starts[j + 6] + size]
        x7 = streams[starts[j + 7]:starts[j + 7] + size]
        for e in range(size):
            acc[e] = (
                acc[e] + h0 * x0[e] + h1 * x1[e] + h2 * x2[e] + h3 * x3[e]
                + h4 * x4[e] + h5 * x5[e] + h6 * x6[e] + h7 * x7[e]
            )
        j += 8
    while j < n_taps:
        hj = h[j]
        xj = streams[starts[j]:starts[j] + size]
        for e in range(size):
            acc[e] += hj * xj[e]
        j += 1


@numba.njit(cache=True, parallel=True)
def _resample_kernel(
    rows, taps, n_taps, phase_of, starts0, first_sample, down, stream_len, chunks_per_window,
    streams_work, acc_work, out,
):  # pragma: no cover - compiled
    """Fill ``out`` ``[R, n_out]`` with the resampled ``rows`` ``[R, L]``.

    ``taps``, ``n_taps``: from :func:`polyphase_taps`. ``phase_of``, ``starts0``,
    ``first_sample``, ``stream_len``, ``chunks_per_window``: from :func:`_stream_plan`.
    ``streams_work`` ``[workers, down * stream_len * BLOCK]`` (zeros) and
    ``acc_work`` ``[workers, up * OUTPUTS_PER_PHASE * BLOCK]``: one buffer per thread.
    """
    n_rows, length = rows.shape
    n_out = out.shape[1]
    up = phase_of.shape[0]
    q_len = OUTPUTS_PER_PHASE
    run = q_len * BLOCK
    chunk = up * q_len  # outputs per chunk
    n_chunks = (n_out + chunk - 1) // chunk
    n_windows = (n_chunks + chunks_per_window - 1) // chunks_per_window
    window_step = chunks_per_window * q_len * down  # input samples per window
    n_blocks = (n_rows + BLOCK - 1) // BLOCK
    workers = streams_work.shape[0]
    for worker in numba.prange(workers):
        starts = np.empty(taps.shape[1], dtype=np.int64)
        streams = streams_work[worker]
        acc_all = acc_work[worker]
        for block in range(worker, n_blocks, workers):
            first_row = block * BLOCK
            lanes = min(BLOCK, n_rows - first_row)
            for window in range(n_windows):
                # Input sample m goes to stream s = (m - m0) % down, position
                # u = (m - m0) // down; zeros outside the signal. In a last, partial
                # block the spare lanes keep the previous block's samples; their
                # outputs are never stored.
                m0 = first_sample + window * window_step
                block_rows = rows[first_row:first_row + lanes]
                for u in range(stream_len):
                    for s in range(down):
                        m = m0 + u * down + s
                        offset = (s * stream_len + u) * BLOCK
                        step = streams[offset:offset + BLOCK]
                        if 0 <= m < length:
                            samples = block_rows[:, m]
                            for b in range(lanes):
                                step[b] = samples[b]
                        else:
                            step[:] = 0.0
                first_chunk = window * chunks_per_window
                for c in range(first_chunk, min(n_chunks, first_chunk + chunks_per_window)):
                    shift = (c - first_chunk) * run
                    for r in range(up):
                        acc = acc_all[r * run:(r + 1) * run]
                        acc[:] = 0.0
                        p = phase_of[r]
                        for j in range(n_taps[p]):
                            starts[j] = starts0[r, j] + shift
                        _multiply_add_taps(acc, streams, starts, taps[p], n_taps[p])
                    # acc_all is [up, q_len, BLOCK]: output c * chunk + r + q * up.
                    for q in range(q_len):
                        for r in range(up):
                            k = c * chunk + r + q * up
                            if k < n_out:
                                base = (r * q_len + q) * BLOCK
                                for b in range(lanes):
                                    out[first_row + b, k] = acc_all[base + b]


def resample_poly_rows(rows: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(rows, up, down, axis=-1)`` for a batch of rows.

    Same filter (``firwin(2 * 10 * max(up, down) + 1, 1 / max(up, down),
    window=("kaiser", 5.0))`` after reducing ``up / down``), same zero padding at the
    ends and same output positions; the result equals scipy's row by row to ~1e-15
    relative for float64 input.

    Output dtype follows scipy: float32 stays float32 (float16 becomes float32,
    integers float64), and the taps are rounded to a floating input dtype as scipy
    does. The arithmetic here is always float64 while scipy accumulates float32 input
    in float32, so float32 results differ from scipy's by float32 rounding (~1e-6
    relative), being the more accurate of the two. ``longdouble`` input is computed
    in float64.

    Args:
        rows: ``[R, L]`` real signals (any float or integer dtype, any strides).
        up: upsampling factor, a positive integer.
        down: downsampling factor, a positive integer.

    Returns:
        ``[R, ceil(L * up / down)]`` resampled rows (a copy of ``rows`` when
        ``up == down``).
    """
    up = _check_factor(up, "up")
    down = _check_factor(down, "down")
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ValueError(f"rows must have shape [R, L]; got shape {rows.shape}")
    if not (np.issubdtype(rows.dtype, np.floating) or np.issubdtype(rows.dtype, np.integer)):
        raise ValueError(f"rows must be real floats or integers; got dtype {rows.dtype}")
    g = math.gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return rows.copy()  # scipy returns a copy, in the input dtype

    n_rows, length = rows.shape
    n_out = -(-length * up // down)
    # As scipy's upfirdn: result_type(taps, x, float32), the taps being float64 for
    # integer input and in the input's dtype for float input.
    is_float = np.issubdtype(rows.dtype, np.floating)
    out_dtype = np.result_type(rows.dtype if is_float else np.float64, np.float32)
    out = np.empty((n_rows, n_out), dtype=out_dtype)
    if n_rows == 0 or n_out == 0:
        return out

    taps, n_taps, half_len = polyphase_taps(up, down, rows.dtype)
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    kernel_out = out if out.dtype in (np.float32, np.float64) else np.empty(out.shape)
    plan = _stream_plan(up, down, n_out, half_len, n_taps)
    # One buffer per thread, allocated here: numpy uses huge pages for large arrays.
    workers = min(numba.get_num_threads(), -(-n_rows // BLOCK))
    streams_work = np.zeros((workers, down * plan.stream_len * BLOCK))
    acc_work = np.empty((workers, up * OUTPUTS_PER_PHASE * BLOCK))
    _resample_kernel(
        rows, taps, n_taps, plan.phase_of, plan.starts0, plan.first_sample, down,
        plan.stream_len, plan.chunks_per_window, streams_work, acc_work, kernel_out,
    )
    if kernel_out is not out:
        out[...] = kernel_out
    return out


class _StreamPlan(NamedTuple):
    """Index bookkeeping shared by every row block (see the module docstring).

    Output ``k = c * up * Q + r + q * up`` (chunk ``c``, residue ``r < up``,
    ``q < Q = OUTPUTS_PER_PHASE``) uses phase ``phase_of[r]``. Window ``w`` holds input
    samples from ``first_sample + w * chunks_per_window * Q * down`` on, sample ``m``
    at offset ``((d % down) * stream_len + d // down) * BLOCK`` (``d`` its distance
    from the window's first sample) of the stream buffer.
    """

    phase_of: np.ndarray  # [up] int64
    starts0: np.ndarray  # [up, max_taps] int64: buffer offset of the sample tap j of
    #   residue r meets for the window's first chunk (q = 0); each further chunk of
    #   the window adds Q * BLOCK.
    first_sample: int
    stream_len: int
    chunks_per_window: int


def _stream_plan(
    up: int, down: int, n_out: int, half_len: int, n_taps: np.ndarray
) -> _StreamPlan:
    q_len = OUTPUTS_PER_PHASE
    max_taps = int(n_taps.max())
    centre = np.arange(up) * down + half_len
    newest, phase_of = centre // up, centre % up  # for outputs 0 .. up - 1
    # The oldest sample any output of the first chunk meets.
    first_sample = int(newest[0]) - (max_taps - 1)
    n_chunks = -(-n_out // (up * q_len))
    chunks_per_window = max(1, min(n_chunks, WINDOW_INPUT_SAMPLES // (q_len * down)))
    # Up to the newest sample that the window's last output meets.
    span = int(newest[-1]) - first_sample + (chunks_per_window * q_len - 1) * down
    stream_len = span // down + 1
    starts0 = np.zeros((up, max_taps), dtype=np.int64)
    for r in range(up):
        distance = newest[r] - first_sample - np.arange(n_taps[phase_of[r]])
        starts0[r, : distance.size] = ((distance % down) * stream_len + distance // down) * BLOCK
    return _StreamPlan(phase_of.astype(np.int64), starts0, first_sample, int(stream_len),
                       int(chunks_per_window))
