"""Numba kernel behind :func:`contrastive_signals.signal.wavelets.wavedec`.

Like every numba kernel here, it compiles (or loads from numba's cache) when a
decomposition first runs, not on import.

One DWT level of a length-``n`` signal with a length-``F`` filter (``F`` even) is,
as in PyWavelets' ``downsampling_convolution``::

    cA[o] = sum_m g[m] * xe[2o + 1 + m],   o = 0 .. (n + F - 1) // 2 - 1

where ``g`` is ``dec_lo`` reversed (``dec_hi`` for ``cD``) and ``xe`` is the signal
with ``P = F - 1`` extension samples on each side. Splitting ``xe`` into its odd
and even samples (``odd[j] = xe[2j + 1]``, ``even[j] = xe[2j + 2]``) turns this
into ``cA[o] = sum_k g[2k] * odd[o + k] + g[2k + 1] * even[o + k]``: unit-stride
loops that LLVM vectorises. Each row runs all its levels while its data sit in
cache, so memory sees one read of the input and one write of the coefficients.

Arrays are addressed as flat buffers plus offsets, and the vectorised loops index
them with unsigned integers. Both are for speed: numba wraps negative signed
indices, and that select stops LLVM vectorising ``a[start + i]``; and every slice
taken in the row loop costs atomic reference-count updates (on the output's
count, shared by the threads), which made short levels several times slower.
"""

from __future__ import annotations

import numba
import numpy as np

# Extension modes the kernel reproduces; values are the kernel's mode codes.
MODE_CODES = {
    "zero": 0,
    "constant": 1,
    "symmetric": 2,
    "reflect": 3,
    "periodic": 4,
    "smooth": 5,
    "antisymmetric": 6,
    "antireflect": 7,
}
_ZERO, _CONSTANT, _SYMMETRIC, _REFLECT, _PERIODIC, _SMOOTH, _ANTISYMMETRIC, _ANTIREFLECT = range(8)

_ROWS_PER_CHUNK = 32  # rows that share one set of scratch buffers
_U1 = np.uint64(1)  # unsigned constants: numba types int64 op uint64 as float64
_U2 = np.uint64(2)


@numba.njit(cache=True)
def _extend(src, start, n, pad, mode, left, right) -> None:
    """PyWavelets' extension of the signal ``src[start : start + n]`` by ``pad`` each side.

    Writes ``left[d - 1]``, the value at signal index ``-d``, and ``right[d - 1]``,
    the value at ``n - 1 + d``, for ``d = 1 .. pad``, including the repeated
    reflections of signals shorter than ``pad``.
    """
    first = np.float64(src[start])
    last = np.float64(src[start + n - 1])
    if n < 2 and (mode == _SMOOTH or mode == _REFLECT or mode == _ANTIREFLECT):
        # PyWavelets does this for smooth and rejects length 1 for the others;
        # wavedec never gets there, and the kernel must not divide by zero
        mode = _CONSTANT
    if mode == _ZERO:
        left[:pad] = 0.0
        right[:pad] = 0.0
    elif mode == _CONSTANT:
        left[:pad] = first
        right[:pad] = last
    elif mode == _SMOOTH:
        left_slope = first - src[start + 1]
        right_slope = last - src[start + n - 2]
        for d in range(1, pad + 1):
            left[d - 1] = first + d * left_slope
            right[d - 1] = last + d * right_slope
    elif mode == _PERIODIC:
        for d in range(1, pad + 1):
            left[d - 1] = src[start + (-d) % n]
            right[d - 1] = src[start + (n - 1 + d) % n]
    elif mode == _SYMMETRIC or mode == _ANTISYMMETRIC:
        # half-sample (anti)symmetric about -1/2 and n - 1/2: period 2n
        sign = -1.0 if mode == _ANTISYMMETRIC else 1.0
        for d in range(1, pad + 1):
            u = (-d) % (2 * n)
            left[d - 1] = src[start + u] if u < n else sign * src[start + 2 * n - 1 - u]
            u = (n - 1 + d) % (2 * n)
            right[d - 1] = src[start + u] if u < n else sign * src[start + 2 * n - 1 - u]
    elif mode == _REFLECT:
        # whole-sample symmetric about 0 and n - 1: period 2n - 2
        period = 2 * n - 2
        for d in range(1, pad + 1):
            u = (-d) % period
            left[d - 1] = src[start + u] if u < n else src[start + period - u]
            u = (n - 1 + d) % period
            right[d - 1] = src[start + u] if u < n else src[start + period - u]
    elif mode == _ANTIREFLECT:
        # whole-sample antisymmetric about each edge, by PyWavelets' recurrence
        _antireflect_side(src, start, n, pad, left, False)
        _antireflect_side(src, start, n, pad, right, True)


@numba.njit(cache=True)
def _antireflect_side(src, start, n, pad, ext, right_side) -> None:
    """``ext[d - 1]``, ``d = 1 .. pad``: antireflect extension past one edge.

    Alternates reflections about the current edge value, as PyWavelets does:
    ``edge - (near[k] - near[0])`` then ``edge + (far[k] - far[0])``, ``k = 1 .. n - 1``,
    where ``near`` walks inwards from this edge and ``far`` from the other one.
    """
    first = np.float64(src[start])
    last = np.float64(src[start + n - 1])
    edge = last if right_side else first
    d = 0
    while d < pad:
        for k in range(1, n):
            if d == pad:
                break
            near = src[start + n - 1 - k] - last if right_side else src[start + k] - first
            ext[d] = edge - near
            d += 1
        edge = ext[d - 1]
        for k in range(1, n):
            if d == pad:
                break
            far = src[start + k] - first if right_side else src[start + n - 1 - k] - last
            ext[d] = edge + far
            d += 1
        edge = ext[d - 1]


@numba.njit(cache=True)
def _value_at(src, start, n, left, right, t):
    """The extended signal at index ``t`` (``-pad <= t < n + pad``)."""
    if t < 0:
        return left[-t - 1]
    if t >= n:
        return right[t - n]
    return np.float64(src[start + t])


@numba.njit(cache=True)
def _split_phases(src, start, n, left, right, f, odd, even) -> None:
    """Odd and even phases of one level's extended signal.

    ``odd[j] = xe[2j + 1]`` and ``even[j] = xe[2j + 2]`` for the
    ``(n + f - 1) // 2 + f // 2 - 1`` values of ``j`` the filters read, where
    ``xe[pad + t]`` is the signal ``src[start : start + n]`` extended by ``left``
    and ``right`` (``pad = f - 1``): ``odd[j]`` is signal index ``2 (j - h)`` and
    ``even[j]`` index ``2 (j - h) + 1``, with ``h = f // 2 - 1``.
    """
    h = f // 2 - 1
    n_phase = (n + f - 1) // 2 + h
    for j in range(h):
        odd[j] = _value_at(src, start, n, left, right, 2 * (j - h))
        even[j] = _value_at(src, start, n, left, right, 2 * (j - h) + 1)
    # the bulk, a de-interleave that LLVM vectorises
    uh, ustart = np.uint64(h), np.uint64(start)
    for i in range(np.uint64(n // 2)):
        odd[uh + i] = src[ustart + _U2 * i]
        even[uh + i] = src[ustart + _U2 * i + _U1]
    if n % 2:
        odd[h + n // 2] = src[start + n - 1]
    for j in range(h + (n + 1) // 2, n_phase):
        odd[j] = _value_at(src, start, n, left, right, 2 * (j - h))
    for j in range(h + n // 2, n_phase):
        even[j] = _value_at(src, start, n, left, right, 2 * (j - h) + 1)


@numba.njit(cache=True)
def _filter_phases(g, odd, even, acc, dest, start, n_out) -> None:
    """``dest[start + o] = sum_k g[2k] odd[o + k] + g[2k + 1] even[o + k]``, ``o < n_out``.

    Two filter pairs per pass over the float64 accumulator ``acc``: the first pass
    initialises it, the last stores to ``dest``.
    """
    half_f = g.size // 2
    n, ustart = np.uint64(n_out), np.uint64(start)
    if half_f == 1:
        g0, g1 = g[0], g[1]
        for o in range(n):
            dest[ustart + o] = g0 * odd[o] + g1 * even[o]
        return
    g0, g1, g2, g3 = g[0], g[1], g[2], g[3]
    if half_f == 2:
        for o in range(n):
            dest[ustart + o] = (g0 * odd[o] + g1 * even[o]) + (
                g2 * odd[o + _U1] + g3 * even[o + _U1]
            )
        return
    for o in range(n):
        acc[o] = (g0 * odd[o] + g1 * even[o]) + (g2 * odd[o + _U1] + g3 * even[o + _U1])
    k = 2
    while half_f - k > 2:
        g0, g1, g2, g3 = g[2 * k], g[2 * k + 1], g[2 * k + 2], g[2 * k + 3]
        k0, k1 = np.uint64(k), np.uint64(k + 1)
        for o in range(n):
            acc[o] += (g0 * odd[o + k0] + g1 * even[o + k0]) + (
                g2 * odd[o + k1] + g3 * even[o + k1]
            )
        k += 2
    g0, g1 = g[2 * k], g[2 * k + 1]
    k0, k1 = np.uint64(k), np.uint64(k + 1)
    if half_f - k == 1:
        for o in range(n):
            dest[ustart + o] = acc[o] + (g0 * odd[o + k0] + g1 * even[o + k0])
    else:
        g2, g3 = g[2 * k + 2], g[2 * k + 3]
        for o in range(n):
            dest[ustart + o] = acc[o] + (
                (g0 * odd[o + k0] + g1 * even[o + k0]) + (g2 * odd[o + k1] + g3 * even[o + k1])
            )


@numba.njit(cache=True)
def _two_tap_level(src, start, n, g_lo, g_hi, right, hi_dest, hi_start, lo_dest, lo_start):
    """One level of a two-tap wavelet (Haar) straight from the signal, no phase copies.

    With ``F = 2`` the extension is one sample per side and only an odd-length
    signal's last output reaches it: ``c[o] = g[0] x[2o] + g[1] x[2o + 1]``, with
    ``x[n] = right[0]``.
    """
    a0, a1, d0, d1 = g_lo[0], g_lo[1], g_hi[0], g_hi[1]
    pairs = np.uint64(n // 2)
    us, uh, ul = np.uint64(start), np.uint64(hi_start), np.uint64(lo_start)
    for o in range(pairs):
        first = src[us + _U2 * o]
        second = src[us + _U2 * o + _U1]
        hi_dest[uh + o] = d0 * first + d1 * second
        lo_dest[ul + o] = a0 * first + a1 * second
    if n % 2:
        last = np.float64(src[start + n - 1])
        hi_dest[hi_start + n // 2] = d0 * last + d1 * right[0]
        lo_dest[lo_start + n // 2] = a0 * last + a1 * right[0]


@numba.njit(cache=True)
def _two_tap_levels(signals, start, length, g_lo, g_hi, levels, mode, left, right,
                    approx, approx_next, out, offsets, r):
    """All levels of one row for a two-tap wavelet; buffers as in :func:`wavedec_rows`.

    The first level reads the row itself (any float dtype), later ones the float64
    approximation of the level before, alternating between two buffers.
    """
    n_out = (length + 1) // 2
    if length % 2:
        _extend(signals, start, length, 1, mode, left, right)
    hi_start = offsets[levels] + r * n_out
    if levels == 1:
        _two_tap_level(signals, start, length, g_lo, g_hi, right, out, hi_start,
                       out, offsets[0] + r * n_out)
        return
    _two_tap_level(signals, start, length, g_lo, g_hi, right, out, hi_start, approx, 0)
    n = n_out
    for level in range(1, levels):
        n_out = (n + 1) // 2
        if n % 2:
            _extend(approx, 0, n, 1, mode, left, right)
        hi_start = offsets[levels - level] + r * n_out
        if level == levels - 1:
            _two_tap_level(approx, 0, n, g_lo, g_hi, right, out, hi_start,
                           out, offsets[0] + r * n_out)
        else:
            _two_tap_level(approx, 0, n, g_lo, g_hi, right, out, hi_start, approx_next, 0)
            approx, approx_next = approx_next, approx
        n = n_out


@numba.njit(cache=True, parallel=True)
def wavedec_rows(x, g_lo, g_hi, levels, mode, out, offsets) -> None:
    """Multilevel DWT of every row of ``x``, written into one flat buffer.

    Args:
        x: ``[R, L]`` signals, C-contiguous float32 or float64.
        g_lo, g_hi: ``[F]`` decomposition filters reversed (``dec_lo[::-1]``,
            ``dec_hi[::-1]``), float64, ``F`` even.
        levels: number of levels, ``>= 1``.
        mode: a value of :data:`MODE_CODES`.
        out: flat float buffer that receives ``[cA_n, cD_n, ..., cD_1]``:
            coefficient array ``i`` is ``out[offsets[i] : offsets[i] + R * len_i]``
            viewed as ``[R, len_i]``, where ``len`` follows PyWavelets'
            ``(n + F - 1) // 2`` per level.
        offsets: ``[levels + 1]`` int64 start of each coefficient array in ``out``.

    Arithmetic is float64 whatever the dtype of ``x`` and ``out``.
    """
    n_rows, length = x.shape
    signals = x.reshape(n_rows * length)
    f = g_lo.size
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    for chunk in numba.prange(n_chunks):
        left = np.empty(f)
        right = np.empty(f)
        odd = np.empty(length // 2 + f)
        even = np.empty(length // 2 + f)
        acc = np.empty(length // 2 + f)
        approx = np.empty(length // 2 + f)  # the next level's input
        approx_next = np.empty(length // 2 + f)
        for r in range(chunk * _ROWS_PER_CHUNK, min(n_rows, (chunk + 1) * _ROWS_PER_CHUNK)):
            if f == 2:
                _two_tap_levels(signals, r * length, length, g_lo, g_hi, levels, mode,
                                left, right, approx, approx_next, out, offsets, r)
                continue
            _extend(signals, r * length, length, f - 1, mode, left, right)
            _split_phases(signals, r * length, length, left, right, f, odd, even)
            n = length
            for level in range(levels):
                n_out = (n + f - 1) // 2
                start = offsets[levels - level] + r * n_out
                _filter_phases(g_hi, odd, even, acc, out, start, n_out)
                if level == levels - 1:
                    _filter_phases(g_lo, odd, even, acc, out, offsets[0] + r * n_out, n_out)
                else:
                    _filter_phases(g_lo, odd, even, acc, approx, 0, n_out)
                    _extend(approx, 0, n_out, f - 1, mode, left, right)
                    _split_phases(approx, 0, n_out, left, right, f, odd, even)
                n = n_out
