"""Decoding CTC outputs into label sequences: greedy best path and prefix beam search.

Inputs are per-frame log-probabilities over ``K + 1`` symbols, symbol ``blank`` (default 0)
being the CTC blank. A labelling is a path through the frames with repeats collapsed and
blanks removed (``a a - a b b`` -> ``a a b``).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

NEG_INF = -math.inf


def collapse_path(path: list[int] | np.ndarray | torch.Tensor, *, blank: int = 0) -> list[int]:
    """The labelling of one frame path ``[T]``: merge repeats, then drop blanks."""
    labels: list[int] = []
    previous = None
    for symbol in (int(s) for s in path):
        if symbol != previous and symbol != blank:
            labels.append(symbol)
        previous = symbol
    return labels


def greedy_decode(log_probs: torch.Tensor, *, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most probable symbol per frame, collapsed.

    Args:
        log_probs: ``[T, B, C]`` (the layout ``torch.nn.CTCLoss`` takes), or probabilities:
            only the per-frame argmax is used.

    Returns:
        ``B`` label lists.
    """
    best = log_probs.argmax(-1).T.cpu()  # [B, T]
    # Keep a frame when it starts a run (differs from the frame before) and is not blank.
    starts = torch.ones_like(best, dtype=torch.bool)
    starts[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = starts & (best != blank)
    return [row[mask].tolist() for row, mask in zip(best, keep, strict=True)]


def _logsumexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    high, low = (a, b) if a > b else (b, a)
    return high + math.log1p(math.exp(low - high))


def prefix_beam_search(log_probs: np.ndarray | torch.Tensor, *, beam_width: int, blank: int = 0
                       ) -> tuple[list[int], float]:
    """CTC prefix beam search over one sequence.

    Each prefix (a labelling so far) carries two log-probabilities: of all paths that give
    that prefix and end in a blank (``p_b``), and of those ending in its last label
    (``p_nb``). Per frame, each prefix is extended by every symbol: a blank or a repeat of
    the last label keeps the prefix; a new label ``c`` appends it, where a repeat of the last
    label only counts from paths that ended in a blank (``a - a`` is ``aa``; ``a a`` is
    ``a``). The ``beam_width`` most probable prefixes (by ``p_b + p_nb``) survive each frame.
    With a beam at least as large as the number of prefixes the search is exact: it returns
    the labelling of highest total probability summed over all its paths.

    Args:
        log_probs: ``[T, C]`` per-frame log-probabilities (log-softmax outputs).
        beam_width: prefixes kept per frame (>= 1).
        blank: index of the blank symbol.

    Returns:
        The best labelling and its log-probability.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    frames = np.asarray(log_probs.detach().cpu() if isinstance(log_probs, torch.Tensor)
                        else log_probs, dtype=np.float64)
    if frames.ndim != 2:
        raise ValueError(f"log_probs must be [T, C], got shape {frames.shape}")
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for frame in frames.tolist():
        next_beams: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (p_b, p_nb) in beams.items():
            total = _logsumexp(p_b, p_nb)
            last = prefix[-1] if prefix else None
            for symbol, p in enumerate(frame):
                if symbol == blank:
                    entry = next_beams[prefix]
                    entry[0] = _logsumexp(entry[0], total + p)
                elif symbol == last:
                    # Repeat without a blank between: stays the same prefix ...
                    entry = next_beams[prefix]
                    entry[1] = _logsumexp(entry[1], p_nb + p)
                    # ... after a blank: a new, doubled label.
                    extended = next_beams[(*prefix, symbol)]
                    extended[1] = _logsumexp(extended[1], p_b + p)
                else:
                    extended = next_beams[(*prefix, symbol)]
                    extended[1] = _logsumexp(extended[1], total + p)
        ranked = sorted(next_beams.items(), key=lambda item: _logsumexp(*item[1]), reverse=True)
        beams = {prefix: (p_b, p_nb) for prefix, (p_b, p_nb) in ranked[:beam_width]}
    best, (p_b, p_nb) = max(beams.items(), key=lambda item: _logsumexp(*item[1]))
    return list(best), _logsumexp(p_b, p_nb)


def beam_search_decode(log_probs: torch.Tensor, *, beam_width: int, blank: int = 0
                       ) -> list[list[int]]:
    """Prefix beam search for every sequence of a batch ``[T, B, C]``; ``B`` label lists."""
    frames = log_probs.detach().float().cpu().numpy()
    return [prefix_beam_search(frames[:, b], beam_width=beam_width, blank=blank)[0]
            for b in range(frames.shape[1])]
