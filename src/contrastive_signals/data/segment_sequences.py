"""Synthetic sequences for CTC sequence labelling: a signal made of sine segments.

Each sequence is ``length`` samples long and is cut into segments of random length (uniform
in ``[min_segment, max_segment]``); every segment is a sine of its class's frequency with a
random phase, and adjacent segments belong to different classes, so the segment-class
sequence (the CTC target) has no repeated labels. Gaussian noise is added on top.

Classes are numbered ``1..K`` because CTC reserves ``0`` for the blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from contrastive_signals.config import require_at_least

BLANK = 0
MAX_REJECTION_ROUNDS = 1000


@dataclass(frozen=True)
class SegmentSequenceSpec:
    """What a generated sequence looks like.

    Attributes:
        length: samples per sequence (all sequences equal length, so batches need no packing).
        min_segment, max_segment: inclusive bounds of a segment's length in samples; the
            last segment of a sequence is cut to fit and is still at least ``min_segment``
            long (sequences whose last segment would be shorter are redrawn).
        frequencies: one sine frequency per class in cycles per sample (class ``k`` uses
            ``frequencies[k - 1]``); at least two classes, each in ``(0, 0.5]`` (Nyquist).
        noise_std: standard deviation of the additive Gaussian noise.
        amplitude: sine amplitude.
    """

    length: int = 400
    min_segment: int = 40
    max_segment: int = 120
    frequencies: tuple[float, ...] = (0.1, 0.2, 0.3)
    noise_std: float = 0.3
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        if self.min_segment < 1:
            raise ValueError(f"min_segment must be >= 1, got {self.min_segment}")
        if self.max_segment < self.min_segment:
            raise ValueError(f"max_segment must be >= min_segment ({self.min_segment}), got "
                             f"{self.max_segment}")
        if self.length < self.min_segment:
            raise ValueError(f"length must be >= min_segment ({self.min_segment}), got {self.length}")
        if not any(m * self.max_segment >= self.length
                   for m in range(1, self.length // self.min_segment + 1)):
            raise ValueError(f"no number of segments of {self.min_segment}..{self.max_segment} "
                             f"samples adds up to length {self.length}")
        if len(self.frequencies) < 2:
            raise ValueError(f"frequencies needs at least 2 classes (adjacent segments differ), "
                             f"got {list(self.frequencies)}")
        if any(not 0 < f <= 0.5 for f in self.frequencies):
            raise ValueError(f"frequencies must lie in (0, 0.5] cycles per sample, got "
                             f"{list(self.frequencies)}")
        if len(set(self.frequencies)) != len(self.frequencies):
            raise ValueError(f"frequencies must differ between classes, got {list(self.frequencies)}")
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if self.amplitude <= 0:
            raise ValueError(f"amplitude must be > 0, got {self.amplitude}")

    @property
    def num_classes(self) -> int:
        """K, the number of segment classes (CTC outputs K + 1 symbols with the blank)."""
        return len(self.frequencies)

    @property
    def max_segments(self) -> int:
        """Most segments a sequence can have: the padded width of the targets."""
        return self.length // self.min_segment


def _segment_lengths(n: int, spec: SegmentSequenceSpec, generator: torch.Generator) -> torch.Tensor:
    """``[n, max_segments]`` segment lengths summing to ``spec.length`` per row (0 = unused).

    Lengths are drawn i.i.d. uniform, the segment that crosses ``length`` is cut there, and
    rows whose cut segment would be shorter than ``min_segment`` are redrawn (a loop over
    rejection rounds, each vectorised over all rejected rows).
    """
    width = -(-spec.length // spec.min_segment)  # enough draws to always reach `length`
    lengths = torch.empty(n, width, dtype=torch.long)
    todo = torch.arange(n)
    for _ in range(MAX_REJECTION_ROUNDS):
        if not len(todo):
            break
        draw = torch.randint(spec.min_segment, spec.max_segment + 1, (len(todo), width),
                             generator=generator)
        ends = draw.cumsum(1).clamp(max=spec.length)
        cut = ends.diff(dim=1, prepend=torch.zeros(len(todo), 1, dtype=torch.long))  # 0 past the end
        last = (cut > 0).sum(1) - 1
        ok = cut.gather(1, last[:, None]).squeeze(1) >= spec.min_segment
        lengths[todo[ok]] = cut[ok]
        todo = todo[~ok]
    else:
        raise RuntimeError(f"{len(todo)} sequences still unplaced after {MAX_REJECTION_ROUNDS} "
                           f"rounds; widen max_segment - min_segment for length {spec.length}")
    # Accepted rows have at most length // min_segment segments.
    return lengths[:, :spec.max_segments]


def make_segment_sequences(
    n: int, *, spec: SegmentSequenceSpec, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Draw ``n`` sequences.

    Args:
        n: number of sequences.
        spec: lengths, frequencies and noise.
        generator: the only source of randomness (CPU ``torch.Generator``).

    Returns:
        ``signals`` ``[n, 1, length]`` float32; ``targets`` ``[n, max_segments]`` int64, the
        segment classes in ``1..K`` padded with 0 (the blank) on the right;
        ``target_lengths`` ``[n]`` int64, segments per sequence; ``frame_labels``
        ``[n, length]`` int64, the class of every sample (segment boundaries are where it
        changes).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    k = spec.num_classes
    lengths = _segment_lengths(n, spec, generator)  # [n, S]
    used = lengths > 0
    # Classes: the first uniform in 1..K, each next one shifted by 1..K-1 (mod K), so
    # adjacent segments always differ.
    first = torch.randint(0, k, (n, 1), generator=generator)
    shifts = torch.randint(1, k, (n, spec.max_segments - 1), generator=generator)
    classes = (torch.cat([first, shifts], 1).cumsum(1) % k) + 1
    targets = torch.where(used, classes, torch.zeros_like(classes))
    phases = 2 * math.pi * torch.rand(n, spec.max_segments, generator=generator)

    # Per sample: which segment it lies in (a loop over segment positions, not samples).
    time = torch.arange(spec.length)
    ends = lengths.cumsum(1)
    segment = torch.zeros(n, spec.length, dtype=torch.long)
    for s in range(spec.max_segments):
        # Unused segments end at `length`, which no sample reaches.
        segment += (time[None, :] >= ends[:, s:s + 1]).long()
    starts = ends - lengths
    frame_labels = targets.gather(1, segment)
    frequency = torch.tensor(spec.frequencies, dtype=torch.float64)[frame_labels - 1]
    local_time = (time[None, :] - starts.gather(1, segment)).double()
    clean = spec.amplitude * torch.sin(2 * math.pi * frequency * local_time + phases.gather(
        1, segment).double())
    noise = spec.noise_std * torch.randn(n, spec.length, generator=generator, dtype=torch.float64)
    return {
        "signals": (clean + noise).float().unsqueeze(1),
        "targets": targets,
        "target_lengths": used.sum(1),
        "frame_labels": frame_labels,
    }


def segment_boundaries(frame_labels: Sequence[int] | torch.Tensor) -> list[int]:
    """Sample indices where a new segment starts (after the first), from ``[length]`` labels."""
    labels = torch.as_tensor(frame_labels)
    return (torch.nonzero(labels[1:] != labels[:-1]).flatten() + 1).tolist()


def target_sequences(targets: torch.Tensor, target_lengths: torch.Tensor) -> list[list[int]]:
    """Padded targets ``[N, S]`` and lengths ``[N]`` -> ``N`` label lists."""
    return [row[:length].tolist() for row, length in zip(targets, target_lengths.tolist(), strict=True)]


@dataclass(frozen=True)
class SegmentDataParams:
    """Generator settings (see :class:`SegmentSequenceSpec`) and the fixed evaluation sets."""

    sequence_length: int = 400
    min_segment: int = 40
    max_segment: int = 120
    frequencies: tuple[float, ...] = (0.1, 0.2, 0.3)
    noise_std: float = 1.0
    amplitude: float = 1.0
    val_size: int = 200
    test_size: int = 500
    val_seed: int = 1
    test_seed: int = 2

    def __post_init__(self) -> None:
        require_at_least(self, ("val_size", "test_size"), 1)
        self.spec  # noqa: B018 - the spec validates lengths, frequencies and noise

    @property
    def spec(self) -> SegmentSequenceSpec:
        return SegmentSequenceSpec(
            length=self.sequence_length, min_segment=self.min_segment,
            max_segment=self.max_segment, frequencies=tuple(self.frequencies),
            noise_std=self.noise_std, amplitude=self.amplitude)

    def evaluation_sets(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{"val": ..., "test": ...}`` (as :func:`make_segment_sequences` returns them), each
        drawn from its own seed."""
        return {part: make_segment_sequences(size, spec=self.spec,
                                             generator=torch.Generator().manual_seed(seed))
                for part, size, seed in (("val", self.val_size, self.val_seed),
                                         ("test", self.test_size, self.test_seed))}
