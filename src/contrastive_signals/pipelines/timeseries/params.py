"""Typed parameters of the ``timeseries`` pipeline (``conf/base/parameters_timeseries.yml``).
A pretraining method is a :class:`~contrastive_signals.methods.series.SeriesPretrainParams`
(method, encoder, budget); its check that method and encoder fit runs while it is parsed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.data.ucr import check_standardise_mode
from contrastive_signals.methods.series import SeriesClassifierParams, SeriesPretrainParams
from contrastive_signals.metrics.ts_baselines import BASELINES, check_baseline_names
from contrastive_signals.models.ts_encoders import POOLING


@dataclass(frozen=True)
class EvaluationParams:
    """``pooling``: where the instance embedding takes its max over time (one of
    :data:`~contrastive_signals.models.ts_encoders.POOLING`)."""

    probe_c: float = 1.0
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 500
    seed: int = 0
    pooling: str = "padded_window"

    def __post_init__(self) -> None:
        if self.pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got '{self.pooling}'")
        if self.probe_c <= 0 or self.tsne_iterations < 250:
            raise ValueError(f"probe_c must be > 0 and tsne_iterations >= 250, got "
                             f"{self.probe_c}, {self.tsne_iterations}")


@dataclass(frozen=True)
class BaselineParams:
    """The practical baselines fitted beside the contrastive methods (aeon's MiniRocket,
    MultiRocket, 1-NN DTW; :mod:`~contrastive_signals.metrics.ts_baselines`): which, their
    seed, and their threads (numba)."""

    names: tuple[str, ...] = BASELINES
    seed: int = 0
    n_jobs: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            object.__setattr__(self, "names", (self.names,))
        check_baseline_names(self.names)
        if self.n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {self.n_jobs}")


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
    baselines: BaselineParams = field(default_factory=BaselineParams)
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
class Mnist1dParams:
    """MNIST-1D's part. ``svm_methods``: names of ``timeseries.ucr.methods`` entries also
    pretrained on MNIST-1D with the same parameters and scored by TS2Vec's SVM protocol
    (``mnist1d.<name>.svm.acc``)."""

    supervised: SeriesClassifierParams
    num_samples: int = 5000
    seed: int = 42
    probe_c: float = 1.0
    num_threads: int | None = 2
    baselines: BaselineParams = field(default_factory=BaselineParams)
    svm_methods: tuple[str, ...] = ()
    simclr: SeriesPretrainParams = field(
        default_factory=lambda: SeriesPretrainParams(method="simclr"))

    def __post_init__(self) -> None:
        if isinstance(self.svm_methods, str):
            object.__setattr__(self, "svm_methods", (self.svm_methods,))
        if len(set(self.svm_methods)) != len(self.svm_methods):
            raise ValueError(f"svm_methods must not repeat a name: {list(self.svm_methods)}")
