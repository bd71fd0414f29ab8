"""Numba kernels and the chunk loop behind :func:`contrastive_signals.signal.spectral.spectrogram`.

Like every numba kernel here, they compile (or load from numba's cache) when a
spectrogram first runs, not on import.

A spectrogram of a ``[R, L]`` batch is three steps per block of rows:

1. cut the rows into ``T`` segments of ``nperseg`` samples, detrend and window them
   (one numba pass, writing a contiguous ``[rows, T, nperseg]`` scratch buffer);
2. ``scipy.fft.rfft`` along the last axis (the same pocketfft scipy.signal uses);
3. ``|X|^2`` times the density gain of each bin, written straight into the
   ``[R, F, T]`` output (one numba pass that also does the ``[T, F] -> [F, T]`` turn).

A block is sized so that its buffers stay in the core's L2 cache, so memory sees one
read of the input and one write of the output. Blocks are handed to a few Python
threads: pocketfft and the kernels (``nogil``) release the GIL, and unlike numba's
``parallel=True`` this keeps the FFT, which cannot run inside numba, in the same
per-thread pipeline.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.fft

# Detrend modes the kernel reproduces; values are the kernel's codes.
DETREND_CODES = {False: 0, None: 0, "constant": 1, "c": 1, "linear": 2, "l": 2}
_NONE, _CONSTANT, _LINEAR = 0, 1, 2

# Scratch segments per block: ~512 KiB, so segments, spectrum and the block's output
# (about 2.5x that together) stay in a 2 MiB L2 cache, while blocks stay few enough
# that the Python work per block (~15 us, holding the GIL) costs little.
_BLOCK_BYTES = 512 * 1024


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(row, start, n, zero):  # pragma: no cover - compiled
    """``sum(row[start:start + n])`` in numpy's pairwise order, so ``np.mean`` matches bit for bit.

    As numpy's ``pairwise_sum``: below 8 a plain loop; up to 128 eight partial sums
    combined as a tree; above that the two halves (split at a multiple of 8) summed
    recursively. ``zero`` carries the accumulator dtype (float32 sums in float32).
    """
    if n < 8:
        total = zero
        for k in range(n):
            total += row[start + k]
        return total
    if n <= 128:
        a0 = row[start]
        a1 = row[start + 1]
        a2 = row[start + 2]
        a3 = row[start + 3]
        a4 = row[start + 4]
        a5 = row[start + 5]
        a6 = row[start + 6]
        a7 = row[start + 7]
        whole = n - n % 8
        for k in range(start + 8, start + whole, 8):
            a0 += row[k]
            a1 += row[k + 1]
            a2 += row[k + 2]
            a3 += row[k + 3]
            a4 += row[k + 4]
            a5 += row[k + 5]
            a6 += row[k + 6]
            a7 += row[k + 7]
        total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        for k in range(start + whole, start + n):
            total += row[k]
        return total
    half = n // 2
    half -= half % 8
    return _pairwise_sum(row, start, half, zero) + _pairwise_sum(row, start + half, n - half, zero)


@numba.njit(cache=True, nogil=True)
def _ramp_dot(row, start, n, mean, centre):  # pragma: no cover - compiled
    """``sum((k - centre) * (row[start + k] - mean))``, eight partial sums."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    k = 0
    while k + 8 <= n:
        a0 += (k - centre) * (row[start + k] - mean)
        a1 += (k + 1 - centre) * (row[start + k + 1] - mean)
        a2 += (k + 2 - centre) * (row[start + k + 2] - mean)
        a3 += (k + 3 - centre) * (row[start + k + 3] - mean)
        a4 += (k + 4 - centre) * (row[start + k + 4] - mean)
        a5 += (k + 5 - centre) * (row[start + k + 5] - mean)
        a6 += (k + 6 - centre) * (row[start + k + 6] - mean)
        a7 += (k + 7 - centre) * (row[start + k + 7] - mean)
        k += 8
    total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    while k < n:
        total += (k - centre) * (row[start + k] - mean)
        k += 1
    return total


@numba.njit(cache=True, nogil=True)
def _windowed_segments(rows, first_row, step, window, detrend, count, segments):  # pragma: no cover
    """``segments[r, t] = window * detrend(rows[first_row + r, t * step : t * step + nperseg])``.

    ``detrend``: 0 none, 1 subtract the segment mean, 2 subtract the segment's
    least-squares line (as ``scipy.signal.detrend``, computed in closed form about
    the segment centre, which is well conditioned).
    """
    n_rows, n_segments, nperseg = segments.shape
    # ``count`` is nperseg in the data's dtype, so float32 data is averaged in float32.
    zero = count - count
    centre = (nperseg - 1) / 2.0
    ramp_norm = nperseg * (nperseg * nperseg - 1.0) / 12.0  # sum((k - centre) ** 2)
    for r in range(n_rows):
        row = rows[first_row + r]
        for t in range(n_segments):
            start = t * step
            dst = segments[r, t]
            if detrend == _NONE:
                for k in range(nperseg):
                    dst[k] = row[start + k] * window[k]
                continue
            mean = _pairwise_sum(row, start, nperseg, zero) / count
            if detrend == _CONSTANT:
                for k in range(nperseg):
                    dst[k] = (row[start + k] - mean) * window[k]
                continue
            slope = 0.0
            if nperseg > 1:  # one sample: the line passes through it, slope irrelevant
                slope = _ramp_dot(row, start, nperseg, mean, centre) / ramp_norm
            for k in range(nperseg):
                dst[k] = (row[start + k] - mean - slope * (k - centre)) * window[k]


@numba.njit(cache=True, nogil=True)
def _power_into(spectrum, gains, log, eps, out, first_row):  # pragma: no cover - compiled
    """``out[first_row + r, f, t] = |spectrum[r, t, f]|^2 * gains[f]`` (in dB when ``log``)."""
    n_rows, n_segments, n_freqs = spectrum.shape
    for r in range(n_rows):
        dst = out[first_row + r]
        src = spectrum[r]
        # Frequency outer, segment inner: the writes are contiguous (the reads of a
        # block's small spectrum stay in cache), and no branch in the inner loop.
        for f in range(n_freqs):
            gain = gains[f]
            for t in range(n_segments):
                value = src[t, f]
                dst[f, t] = (value.real * value.real + value.imag * value.imag) * gain
        if log:
            for f in range(n_freqs):
                for t in range(n_segments):
                    dst[f, t] = 10.0 * np.log10(dst[f, t] + eps)


def spectrogram_rows(
    rows: np.ndarray,
    *,
    window: np.ndarray,
    step: int,
    detrend: int,
    gains: np.ndarray,
    log: bool,
    eps: float,
    out: np.ndarray,
) -> None:
    """Fill ``out`` with the one-sided power spectrogram of every row.

    Args:
        rows: ``[R, L]`` float32 or float64 signals (any strides).
        window: ``[nperseg]`` window in ``rows``' dtype.
        step: samples between segment starts (``nperseg - noverlap``).
        detrend: a value of :data:`DETREND_CODES`.
        gains: ``[F]`` factor per frequency bin (density scale, one-sided doubling).
        log: store ``10 * log10(power + eps)`` instead of power.
        eps: floor added before the logarithm.
        out: ``[R, F, T]`` output in ``rows``' dtype, ``F = nperseg // 2 + 1``.
    """
    n_rows = rows.shape[0]
    n_segments = out.shape[2]
    nperseg = window.shape[0]
    block_rows = max(1, _BLOCK_BYTES // (n_segments * nperseg * rows.itemsize))
    count = rows.dtype.type(nperseg)
    starts = iter(range(0, n_rows, block_rows))
    lock = threading.Lock()

    def next_start() -> int | None:
        with lock:
            return next(starts, None)

    def work() -> None:
        segments = np.empty((block_rows, n_segments, nperseg), dtype=rows.dtype)
        # Blocks are taken from a shared queue, so a thread slowed by other load
        # simply does fewer of them.
        while (start := next_start()) is not None:
            block = segments[: min(block_rows, n_rows - start)]
            _windowed_segments(rows, start, step, window, detrend, count, block)
            spectrum = scipy.fft.rfft(block, axis=-1, workers=1, overwrite_x=True)
            _power_into(spectrum, gains, log, eps, out, start)

    n_threads = min(numba.get_num_threads(), -(-n_rows // block_rows))
    if n_threads <= 1:
        work()
        return
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for future in [pool.submit(work) for _ in range(n_threads)]:
            future.result()  # re-raises a worker's exception
