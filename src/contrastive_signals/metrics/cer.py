"""Character error rate: Levenshtein alignment of a hypothesis against a reference, with
substitutions, deletions and insertions counted separately (from the backtrace).

CER = (S + D + I) / N with N the reference length, so an empty hypothesis scores 1.0 (all
deletions) and a hypothesis with many insertions can score above 1. The corpus CER is the
total number of edits over the total reference length (not the mean of per-sequence CERs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EditCounts:
    """Edit operations of one alignment (or of a corpus: sums over alignments)."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    @property
    def edits(self) -> int:
        """The edit distance: S + D + I."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def cer(self) -> float:
        """Edits per reference symbol.

        Raises:
            ValueError: for an empty reference (CER is undefined there).
        """
        if self.reference_length == 0:
            raise ValueError("CER is undefined for an empty reference")
        return self.edits / self.reference_length

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(self.substitutions + other.substitutions,
                          self.deletions + other.deletions,
                          self.insertions + other.insertions,
                          self.reference_length + other.reference_length)


def edit_counts(reference: Sequence[int], hypothesis: Sequence[int]) -> EditCounts:
    """Align ``hypothesis`` to ``reference`` with unit costs and count each operation.

    The dynamic programme fills ``D[i, j]`` = edit distance of ``reference[:i]`` and
    ``hypothesis[:j]``; the backtrace walks from ``D[N, M]`` to ``D[0, 0]``. Among equally
    cheap alignments it prefers a match/substitution, then a deletion, then an insertion,
    so the counts are deterministic.

    Args:
        reference: ``[N]`` symbols (e.g. segment classes).
        hypothesis: ``[M]`` symbols.
    """
    ref, hyp = list(reference), list(hypothesis)
    n, m = len(ref), len(hyp)
    # Plain lists: the sequences are short, and numpy scalar indexing would be slower.
    table = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i][j] = min(table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]),
                              table[i - 1][j] + 1,
                              table[i][j - 1] + 1)
    substitutions = deletions = insertions = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and table[i][j] == table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            substitutions += int(ref[i - 1] != hyp[j - 1])
            i, j = i - 1, j - 1
        elif i > 0 and table[i][j] == table[i - 1][j] + 1:
            deletions += 1
            i -= 1
        else:
            insertions += 1
            j -= 1
    return EditCounts(substitutions, deletions, insertions, n)


def character_error_rate(reference: Sequence[int], hypothesis: Sequence[int]) -> float:
    """``(S + D + I) / len(reference)`` of one pair; an empty hypothesis gives 1.0."""
    return edit_counts(reference, hypothesis).cer


def corpus_edit_counts(references: Iterable[Sequence[int]], hypotheses: Iterable[Sequence[int]]
                       ) -> EditCounts:
    """Summed edit counts over aligned pairs (``references[i]`` with ``hypotheses[i]``).

    Raises:
        ValueError: when the two collections differ in length.
    """
    refs, hyps = list(references), list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    total = EditCounts()
    for ref, hyp in zip(refs, hyps, strict=True):
        total = total + edit_counts(ref, hyp)
    return total


def corpus_cer(references: Iterable[Sequence[int]], hypotheses: Iterable[Sequence[int]]) -> float:
    """Total edits / total reference length over a corpus."""
    return corpus_edit_counts(references, hypotheses).cer
