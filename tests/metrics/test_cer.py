"""Character error rate against hand-worked alignments and an independent edit distance."""

import functools
import itertools
import random

import pytest

from contrastive_signals.metrics.cer import (
    EditCounts,
    character_error_rate,
    corpus_cer,
    corpus_edit_counts,
    edit_counts,
)


@pytest.mark.parametrize("reference, hypothesis, expected", [
    ([1, 2, 3], [1, 2, 3], EditCounts(0, 0, 0, 3)),
    ([1, 2, 3], [1, 3], EditCounts(0, 1, 0, 3)),        # 2 deleted
    ([1, 2, 3], [1, 2, 2, 3], EditCounts(0, 0, 1, 3)),  # a 2 inserted
    ([1, 2, 3], [1, 1, 3], EditCounts(1, 0, 0, 3)),     # 2 -> 1
    ([1, 2, 3, 1], [], EditCounts(0, 4, 0, 4)),         # empty prediction: all deleted
    ([1, 2], [3, 1, 2, 1], EditCounts(0, 0, 2, 2)),     # 3 and the last 1 inserted
    ([1, 2, 1, 2], [2, 1, 2, 1], EditCounts(0, 1, 1, 4)),  # shifted by one: delete + insert
    (list("kitten"), list("sitting"), EditCounts(2, 0, 1, 6)),  # k->s, e->i, +g
    (list("sunday"), list("saturday"), EditCounts(1, 0, 2, 6)),  # +a +t, n->r
])
def test_hand_worked_alignments(reference, hypothesis, expected):
    counts = edit_counts(reference, hypothesis)
    assert counts == expected
    assert character_error_rate(reference, hypothesis) == pytest.approx(
        expected.edits / len(reference))


def test_empty_prediction_is_cer_one():
    assert character_error_rate([3, 1, 2], []) == 1.0


def test_insertions_can_push_cer_above_one():
    assert character_error_rate([1], [2, 3, 2]) == 3.0  # one substitution, two insertions


def test_corpus_cer_is_total_edits_over_total_length():
    references = [[1, 2, 3, 1], [2]]
    hypotheses = [[1, 2, 3, 1], [3]]
    # One substitution in five symbols: 0.2 (the mean of per-sequence CERs would be 0.5).
    assert corpus_cer(references, hypotheses) == pytest.approx(0.2)
    assert corpus_edit_counts(references, hypotheses) == EditCounts(1, 0, 0, 5)


def _distance(a, b):
    """Plain recursive Levenshtein distance (memoised), no backtrace."""

    @functools.cache
    def d(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j - 1) + (a[i - 1] != b[j - 1]), d(i - 1, j) + 1, d(i, j - 1) + 1)

    return d(len(a), len(b))


@pytest.mark.parametrize("seed", range(20))
def test_counts_agree_with_an_independent_edit_distance(seed):
    rng = random.Random(seed)
    reference = [rng.randint(1, 3) for _ in range(rng.randint(1, 9))]
    hypothesis = [rng.randint(1, 3) for _ in range(rng.randint(0, 9))]
    counts = edit_counts(reference, hypothesis)
    assert counts.edits == _distance(tuple(reference), tuple(hypothesis))
    # The backtrace is a real alignment: hypothesis = reference - deletions + insertions.
    assert len(hypothesis) == len(reference) - counts.deletions + counts.insertions
    assert counts.reference_length == len(reference)


def test_all_short_pairs_are_symmetric_in_distance():
    for a, b in itertools.product(itertools.product((1, 2), repeat=3), repeat=2):
        assert edit_counts(a, b).edits == edit_counts(b, a).edits


def test_undefined_cases_raise():
    with pytest.raises(ValueError, match="empty reference"):
        character_error_rate([], [1])
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        corpus_cer([[1], [2]], [[1]])
