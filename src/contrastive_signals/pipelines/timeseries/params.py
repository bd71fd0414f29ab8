"""Typed parameters of the ``timeseries`` pipeline (``conf/base/parameters_timeseries.yml``).
A pretraining method is a :class:`~contrastive_signals.methods.series.SeriesPretrainParams`
(method, encoder, budget); its check that method and encoder fit runs while it is parsed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.data.ucr import check_standardise_mode
from contrastive_signals.methods.base import check_compatible
from contrastive_signals.methods.series import SeriesPretrainParams
from contrastive_signals.methods.supervised import REQUIRES, ClassifierParams
from contrastive_signals.models.registry import get_entry
from contrastive_signals.training.fit import FitConfig

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
        if self.probe_c <= 0 or self.tsne_iterations < 250:
            raise ValueError(f"probe_c must be > 0 and tsne_iterations >= 250, got "
                             f"{self.probe_c}, {self.tsne_iterations}")


@dataclass(frozen=True)
class UcrParams:
    """The UCR/UEA part: which sets, which methods (name -> :class:`SeriesPretrainParams`),
    which one is the default (``best``)."""

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
        if not self.datasets or len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets must name at least one UCR/UEA dataset, without "
                             f"duplicates: {list(self.datasets)}")
        if self.default_method not in self.methods:
            raise ValueError(f"default_method '{self.default_method}' is not one of the methods "
                             f"{sorted(self.methods)}")
        check_standardise_mode(self.standardise)


@dataclass(frozen=True)
class Mnist1dSupervisedParams:
    """The series encoder ``architecture`` (config ``encoder``) with a classifier head,
    trained end to end with labels."""

    fit: FitConfig
    architecture: str = "dilated_conv"
    encoder: dict[str, Any] = field(default_factory=dict)
    classifier: ClassifierParams = field(default_factory=ClassifierParams)

    def __post_init__(self) -> None:
        check_compatible("supervised", REQUIRES, self.architecture)
        get_entry(self.architecture, modality="series")


@dataclass(frozen=True)
class Mnist1dParams:
    supervised: Mnist1dSupervisedParams
    num_samples: int = 5000
    seed: int = 42
    probe_c: float = 1.0
    num_threads: int | None = 2
    simclr: SeriesPretrainParams = field(
        default_factory=lambda: SeriesPretrainParams(method="simclr"))
