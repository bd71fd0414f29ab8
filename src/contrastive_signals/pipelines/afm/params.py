"""Typed parameters of the ``afm`` pipeline (``conf/base/parameters_afm.yml``); each node
builds its section with :func:`contrastive_signals.config.from_params`, so a bad value fails
before any training with the parameter's path in the message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.augment.curves import CurveAugmentation
from contrastive_signals.data.afm_curves import ON_BAD_FILE
from contrastive_signals.losses.miners import METRICS
from contrastive_signals.losses.triplet import MINERS
from contrastive_signals.signal.steps import validate_feature_steps
from contrastive_signals.training.fit import FitConfig

LABEL_SUBSETS = ("5pc", "100pc")
"""Label-fraction names of the ablation; ``afm.split.label_fractions`` gives their values."""


@dataclass(frozen=True)
class IngestionParams:
    on_bad_file: str = "raise"   # raise | report
    grid_points: int = 1024      # uniform distance grid every retract curve is put on

    def __post_init__(self) -> None:
        if self.on_bad_file not in ON_BAD_FILE:
            raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}; got "
                             f"{self.on_bad_file!r}")
        if self.grid_points < 16:
            raise ValueError(f"grid_points must be >= 16; got {self.grid_points}")


@dataclass(frozen=True)
class SplitParams:
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    label_fractions: dict[str, float] = field(
        default_factory=lambda: {"5pc": 0.05, "100pc": 1.0})

    def __post_init__(self) -> None:
        if set(self.label_fractions) != set(LABEL_SUBSETS):
            raise ValueError(f"label_fractions must name exactly {list(LABEL_SUBSETS)} (the "
                             f"ablation's label subsets); got {sorted(self.label_fractions)}")
        for name, value in self.label_fractions.items():
            if not 0 < value <= 1:
                raise ValueError(f"label_fractions.{name} must lie in (0, 1]; got {value}")


@dataclass(frozen=True)
class PreprocessingParams:
    steps: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        validate_feature_steps(list(self.steps))
        if sum(step["name"] == "derivative_channel" for step in self.steps) != 1 \
                or self.steps[-1]["name"] != "derivative_channel":
            raise ValueError("steps must end with exactly one derivative_channel step (the "
                             "ablation drops it for the no-derivative input)")

    def without_derivative(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self.steps if s["name"] != "derivative_channel"]


@dataclass(frozen=True)
class ModelParams:
    channels: tuple[int, ...] = (16, 32, 32, 64)
    kernel_size: int = 7
    embedding_dim: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of widths >= 1; got "
                             f"{list(self.channels)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1; got {self.kernel_size}")
        if self.embedding_dim < 1 or not 0 <= self.dropout < 1:
            raise ValueError("embedding_dim must be >= 1 and dropout in [0, 1)")

    def config(self, *, in_channels: int, length: int, num_classes: int) -> dict[str, Any]:
        return {"in_channels": in_channels, "length": length, "channels": list(self.channels),
                "kernel_size": self.kernel_size, "embedding_dim": self.embedding_dim,
                "num_classes": num_classes, "dropout": self.dropout}


@dataclass(frozen=True)
class PretrainingParams:
    fit: FitConfig
    batch_size: int = 256
    temperature: float = 0.2
    projection_hidden: int = 128
    projection_dim: int = 64
    augmentation: CurveAugmentation = field(default_factory=CurveAugmentation)
    num_threads: int | None = 2

    def __post_init__(self) -> None:
        if self.batch_size < 4 or not self.temperature > 0:
            raise ValueError("batch_size must be >= 4 and temperature > 0")


@dataclass(frozen=True)
class HeadParams:
    """The classifier head after triplet fine-tuning: trained alone on the frozen embeddings
    (``train_encoder: false``) or together with the encoder (``true``)."""

    fit: FitConfig
    batch_size: int = 64
    train_encoder: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2; got {self.batch_size}")


@dataclass(frozen=True)
class FinetuningParams:
    fit: FitConfig
    head: HeadParams
    classes_per_batch: int = 4
    samples_per_class: int = 16
    batches_per_epoch: int = 20
    margin: float = 0.2
    mining: str = "semi_hard"
    metric: str = "euclidean"
    num_threads: int | None = 2

    def __post_init__(self) -> None:
        if self.mining not in MINERS:
            raise ValueError(f"mining must be one of {sorted(MINERS)}; got {self.mining!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}; got {self.metric!r}")
        if self.classes_per_batch < 2 or self.samples_per_class < 2 or self.batches_per_epoch < 1:
            raise ValueError("need classes_per_batch >= 2, samples_per_class >= 2 and "
                             "batches_per_epoch >= 1")
        if not self.margin > 0:
            raise ValueError(f"margin must be > 0; got {self.margin}")


@dataclass(frozen=True)
class SupervisedParams:
    fit: FitConfig
    batch_size: int = 64
    label_smoothing: float = 0.0
    num_threads: int | None = 2

    def __post_init__(self) -> None:
        if self.batch_size < 2 or not 0 <= self.label_smoothing < 1:
            raise ValueError("batch_size must be >= 2 and label_smoothing in [0, 1)")


@dataclass(frozen=True)
class FindPeaksParams:
    prominences: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.8)
    contact_zones: tuple[int, ...] = (2, 4, 8, 12)

    def __post_init__(self) -> None:
        if not self.prominences or min(self.prominences) <= 0:
            raise ValueError("prominences must be a non-empty list of values > 0")
        if not self.contact_zones or min(self.contact_zones) < 0:
            raise ValueError("contact_zones must be a non-empty list of values >= 0")


@dataclass(frozen=True)
class PlotParams:
    examples_per_class: int = 3
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.examples_per_class < 1 or self.tsne_iterations < 250:
            raise ValueError("examples_per_class must be >= 1 and tsne_iterations >= 250")
