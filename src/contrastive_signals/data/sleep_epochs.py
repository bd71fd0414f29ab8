"""Sleep recordings as 30-s epochs: preprocessing settings, the epochs dataset, the split by
subject, and samplers of consecutive epochs.

The *epochs dataset* is ``{"stages", "channels", "sampling_rate", "epoch_seconds",
"recordings": [{"name", "subject", "night", "epochs": [E, C, L] float32, "labels": [E] int64,
"epoch_index": [E] int64}]}``; a *split* is ``{part: {"subjects", "recordings", "epochs",
"stage_counts"}}`` for the parts train, val, test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from contrastive_signals.config import ParameterError
from contrastive_signals.data.sleep_edf import (
    EPOCH_SECONDS,
    STAGES,
    recording_epochs,
    subject_split,
)

NORMALIZATIONS = ("robust", "std", "none")


@dataclass(frozen=True)
class SplitParams:
    val_subjects: int = 1
    test_subjects: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.val_subjects < 0 or self.test_subjects < 1:
            raise ValueError(f"need val_subjects >= 0 and test_subjects >= 1, got "
                             f"{self.val_subjects} and {self.test_subjects}")


@dataclass(frozen=True)
class IngestionParams:
    """Preprocessing of every recording (channels and kept wake are reader settings in
    ``conf/base/catalog_sleep.yml``) and the subject split."""

    low_hz: float = 0.3
    high_hz: float = 35.0
    filter_order: int = 4
    target_hz: float = 100.0
    normalize: str = "robust"
    clip: float | None = 20.0
    split: SplitParams = field(default_factory=SplitParams)

    def __post_init__(self) -> None:
        if not 0 < self.low_hz < self.high_hz:
            raise ValueError(f"need 0 < low_hz < high_hz, got {self.low_hz}, {self.high_hz}")
        if self.high_hz >= self.target_hz / 2:
            raise ValueError(f"high_hz ({self.high_hz}) must lie below the Nyquist frequency of "
                             f"target_hz ({self.target_hz / 2})")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got '{self.normalize}'")
        if self.clip is not None and self.clip <= 0:
            raise ValueError(f"clip must be > 0 or null, got {self.clip}")
        if self.filter_order < 1:
            raise ValueError(f"filter_order must be >= 1, got {self.filter_order}")


def sleep_epochs(recordings: list[dict[str, Any]], edf_files: list[str], config: IngestionParams
                 ) -> dict[str, Any]:
    """Band-pass, resample, normalise and cut every recording into 30-s epochs.

    Args:
        recordings: what the Sleep-EDF reader returns (validated, trimmed to the sleep
            period plus the kept wake); not changed.
        edf_files: the Sleep-EDF files in the folder (every recording read must be among them).

    Returns:
        the epochs dataset (module docstring), ``L = 30 * target_hz``.
    """
    listed = set(edf_files)
    unlisted = sorted(r["psg_file"] for r in recordings if r["psg_file"] not in listed)
    if unlisted:
        raise ValueError(f"recordings {unlisted} were read but are not among the folder's "
                         f"Sleep-EDF files {sorted(listed)}")
    channels = {tuple(r["channels"]) for r in recordings}
    if len(channels) != 1:
        raise ValueError(f"recordings disagree on their channels: {sorted(channels)}")
    out = []
    for recording in recordings:
        epochs = recording_epochs(recording, low_hz=config.low_hz, high_hz=config.high_hz,
                                  target_hz=config.target_hz, filter_order=config.filter_order,
                                  normalize=config.normalize, clip=config.clip)
        out.append({"name": recording["name"], "subject": int(recording["subject"]),
                    "night": int(recording["night"]),
                    **{key: torch.from_numpy(value) for key, value in epochs.items()}})
    return {"stages": list(STAGES), "channels": list(next(iter(channels))),
            "sampling_rate": float(config.target_hz), "epoch_seconds": EPOCH_SECONDS,
            "recordings": out}


def stage_counts(recordings: list[dict[str, Any]]) -> dict[str, int]:
    """Epochs per stage over ``recordings``."""
    labels = torch.cat([r["labels"] for r in recordings]) if recordings else torch.zeros(0, dtype=torch.long)
    counts = torch.bincount(labels, minlength=len(STAGES))
    return {stage: int(n) for stage, n in zip(STAGES, counts, strict=True)}


def split_by_subject(epochs: dict[str, Any], config: SplitParams, *, path: str = "split"
                     ) -> dict[str, Any]:
    """Seeded split by subject: all nights of a subject land in the same part.

    Args:
        path: where ``config`` sits in the parameters (named in the error).

    Returns:
        ``{part: {"subjects", "recordings", "epochs", "stage_counts"}}`` for train, val, test.

    Raises:
        ParameterError: naming ``<path>.test_subjects`` and ``<path>.val_subjects`` and the
            number of subjects when there are too few for them and one training subject.
    """
    recordings = epochs["recordings"]
    subjects = sorted({int(r["subject"]) for r in recordings})
    needed = config.test_subjects + config.val_subjects + 1
    if len(subjects) < needed:
        raise ParameterError(
            f"{path}.test_subjects={config.test_subjects} and {path}.val_subjects="
            f"{config.val_subjects} need {needed} subjects (with 1 for training), but the "
            f"recordings hold {len(subjects)} subject(s) {subjects}: lower {path}.test_subjects "
            f"or {path}.val_subjects, or add recordings of more subjects")
    parts = subject_split([r["subject"] for r in recordings], val_subjects=config.val_subjects,
                          test_subjects=config.test_subjects, seed=config.seed)
    summary = {}
    for part, subjects in parts.items():
        members = [r for r in recordings if r["subject"] in set(subjects)]
        summary[part] = {"subjects": subjects, "recordings": [r["name"] for r in members],
                         "epochs": sum(len(r["labels"]) for r in members),
                         "stage_counts": stage_counts(members)}
    return summary


def recordings_of(epochs: dict[str, Any], split: dict[str, Any], part: str) -> list[dict[str, Any]]:
    """The recordings of ``part`` (train, val, test) in the epochs dataset's order."""
    names = set(split[part]["recordings"])
    return [r for r in epochs["recordings"] if r["name"] in names]


def segment_sampler(recordings: list[dict[str, Any]], length: int, *, what: str = "segment length"
                    ) -> Callable[[int, torch.Generator], torch.Tensor]:
    """``draw(count, generator)`` -> ``[count, C, length * L]``: stretches of ``length``
    consecutive epochs (channels kept apart, time joined), a recording drawn in proportion to
    its number of start positions, then a start. ``what`` names ``length`` in the error when no
    recording is long enough."""
    usable = [r for r in recordings if len(r["labels"]) >= length]
    if not usable:
        raise ValueError(f"no recording holds {length} epochs ({what})")
    weights = torch.tensor([len(r["labels"]) - length + 1 for r in usable], dtype=torch.float)

    def draw(count: int, generator: torch.Generator) -> torch.Tensor:
        rows = torch.multinomial(weights, count, replacement=True, generator=generator)
        out = []
        for row in rows.tolist():
            start = int(torch.randint(int(weights[row]), (1,), generator=generator))
            out.append(usable[row]["epochs"][start:start + length].transpose(0, 1).flatten(1))
        return torch.stack(out)

    return draw
