"""Typed parameters of the ``timeseries`` pipeline (``conf/base/parameters_timeseries.yml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.augment.signals import SignalAugmentation
from contrastive_signals.data.ucr import check_standardise_mode
from contrastive_signals.models.ts_encoders import ARCHITECTURES

OBJECTIVES = ("hierarchical", "simclr")


@dataclass(frozen=True)
class MethodParams:
    """One pretraining method: an encoder architecture and a contrastive objective.

    ``hierarchical`` is TS2Vec's loss on two overlapping random crops; ``simclr`` is NT-Xent on
    the max-pooled, projected embeddings of two augmented views. Training runs for
    ``iterations`` optimiser steps of ``batch_size`` series (TS2Vec counts iterations, not
    epochs; ``None`` is TS2Vec's default: 200 for at most 100,000 training values, else 600);
    ``swa`` evaluates the running average of the weights, as TS2Vec does.
    """

    architecture: str = "dilated_conv"
    objective: str = "hierarchical"
    encoder: dict[str, Any] = field(default_factory=dict)
    iterations: int | None = 200
    batch_size: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.01  # torch's AdamW default, which TS2Vec uses
    swa: bool = True
    seed: int = 42
    alpha: float = 0.5
    temporal_unit: int = 0
    temperature: float = 0.5
    projection_dim: int = 64
    projection_hidden_dim: int = 128
    augmentation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got "
                             f"'{self.architecture}'")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got '{self.objective}'")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        SignalAugmentation(**self.augmentation)  # fail early on a bad augmentation


POOLING_MODES = ("padded_window", "observed_steps")


@dataclass(frozen=True)
class EvaluationParams:
    """``pooling``: where the instance embedding takes its max over time. ``padded_window`` is
    TS2Vec's ``encoding_window='full_series'``: every step of the padded array, so for a series
    shorter than the array the encoder's outputs just past its end (which still see its last
    steps) count too; ``observed_steps`` keeps the series' own steps only. Equal-length sets
    give the same embedding either way."""

    probe_c: float = 1.0
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 500
    seed: int = 0
    pooling: str = "padded_window"

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got '{self.pooling}'")
        if self.probe_c <= 0:
            raise ValueError(f"probe_c must be > 0, got {self.probe_c}")
        if self.tsne_iterations < 250:
            raise ValueError(f"tsne_iterations must be >= 250, got {self.tsne_iterations}")


@dataclass(frozen=True)
class UcrParams:
    """The UCR/UEA part: which sets, which methods, which one is the default (``best``)."""

    datasets: tuple[str, ...] = ("GunPoint",)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_method: str = "ts2vec"
    standardise: bool | str = "auto"
    num_threads: int | None = 2
    evaluation: EvaluationParams = field(default_factory=EvaluationParams)
    targets: dict[str, float] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    reference_seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.datasets, str):
            object.__setattr__(self, "datasets", (self.datasets,))
        if not self.datasets:
            raise ValueError("datasets must name at least one UCR/UEA dataset")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets has duplicates: {list(self.datasets)}")
        if not self.methods:
            raise ValueError("methods must define at least one pretraining method")
        if self.default_method not in self.methods:
            raise ValueError(f"default_method '{self.default_method}' is not one of the methods "
                             f"{sorted(self.methods)}")
        check_standardise_mode(self.standardise)
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")


@dataclass(frozen=True)
class Mnist1dSupervisedParams:
    architecture: str = "dilated_conv"
    encoder: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got "
                             f"'{self.architecture}'")
        if self.epochs < 1 or self.batch_size < 2 or not self.learning_rate > 0:
            raise ValueError("epochs must be >= 1, batch_size >= 2 and learning_rate > 0; got "
                             f"{self.epochs}, {self.batch_size}, {self.learning_rate}")


@dataclass(frozen=True)
class Mnist1dParams:
    num_samples: int = 5000
    seed: int = 42
    probe_c: float = 1.0
    num_threads: int | None = 2
    simclr: MethodParams = field(default_factory=lambda: MethodParams(objective="simclr"))
    supervised: Mnist1dSupervisedParams = field(default_factory=Mnist1dSupervisedParams)
