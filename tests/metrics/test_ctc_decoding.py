"""CTC decoding: best-path collapse, and prefix beam search against brute-force summation
over every frame path on tiny inputs."""

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from contrastive_signals.metrics.ctc_decoding import (
    beam_search_decode,
    collapse_path,
    greedy_decode,
    prefix_beam_search,
)


def brute_force_labellings(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """Probability of every labelling: the sum over all C^T frame paths that collapse to it."""
    t, c = log_probs.shape
    probs = np.exp(log_probs)
    totals: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(c), repeat=t):
        totals[tuple(collapse_path(path))] += float(np.prod(probs[np.arange(t), path]))
    return totals


def random_log_probs(t: int, c: int, seed: int, sharpness: float = 2.0) -> np.ndarray:
    logits = sharpness * torch.randn(t, c, generator=torch.Generator().manual_seed(seed),
                                     dtype=torch.float64)
    return logits.log_softmax(-1).numpy()


@pytest.mark.parametrize("path, expected", [
    ([0, 1, 1, 0, 1, 2, 2], [1, 1, 2]),
    ([1, 1, 1], [1]),
    ([0, 0], []),
    ([2, 0, 2, 2, 0, 0, 1], [2, 2, 1]),
    ([], []),
])
def test_collapse_path(path, expected):
    assert collapse_path(path) == expected


def test_greedy_decode_takes_the_best_path_per_sequence():
    paths = torch.tensor([[1, 1, 0, 1, 2, 0], [0, 0, 0, 0, 0, 0]]).T  # [T, B]
    log_probs = torch.nn.functional.one_hot(paths, 3).float().add(0.01).log()
    assert greedy_decode(log_probs) == [[1, 1, 2], []]


@pytest.mark.parametrize("t, k, seed", [
    (t, k, seed) for t in range(1, 6) for k in (1, 2) for seed in range(4)
])
def test_wide_beam_finds_the_most_probable_labelling(t, k, seed):
    log_probs = random_log_probs(t, k + 1, seed)
    totals = brute_force_labellings(log_probs)
    assert sum(totals.values()) == pytest.approx(1.0)
    best = max(totals, key=totals.get)
    labels, score = prefix_beam_search(log_probs, beam_width=1000)
    assert tuple(labels) == best
    assert score == pytest.approx(math.log(totals[best]), abs=1e-9)


def test_best_labelling_can_differ_from_best_path():
    """Blank is the likelier symbol in each of two frames (best path: empty), but 'a' wins
    as a labelling: paths aa, a-, -a give 0.16 + 0.24 + 0.24 = 0.64 > 0.36."""
    log_probs = np.log([[0.6, 0.4], [0.6, 0.4]])
    assert greedy_decode(torch.tensor(log_probs)[:, None]) == [[]]
    labels, score = prefix_beam_search(log_probs, beam_width=4)
    assert labels == [1] and score == pytest.approx(math.log(0.64))


def test_repeated_label_needs_a_blank_between():
    log_probs = np.log([[0.05, 0.95], [0.9, 0.1], [0.05, 0.95]])  # a - a
    assert prefix_beam_search(log_probs, beam_width=8)[0] == [1, 1]


def test_batch_beam_search_matches_single_sequences():
    frames = torch.from_numpy(np.stack([random_log_probs(6, 3, s) for s in range(3)], axis=1))
    decoded = beam_search_decode(frames, beam_width=5)
    assert decoded == [prefix_beam_search(frames[:, b].numpy(), beam_width=5)[0] for b in range(3)]


def test_beam_width_must_be_positive():
    with pytest.raises(ValueError, match="beam_width"):
        prefix_beam_search(np.zeros((2, 3)), beam_width=0)
