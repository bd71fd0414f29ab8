"""Typed parameters of the ``afm`` pipeline (``conf/base/parameters_afm.yml``): a bad value,
or a method that does not fit the encoder, fails before any training, naming its path. The
methods' blocks (``two_view``, ``triplet``, ``classifier``) are the methods' own classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.augment.curves import CurveAugmentation
from contrastive_signals.data.splits import LabelledSplitParams
from contrastive_signals.methods.select import MethodParams
from contrastive_signals.methods.supervised import ClassifierParams
from contrastive_signals.methods.train import HeadStage
from contrastive_signals.methods.triplet import TripletParams
from contrastive_signals.signal.filters import check_derivative_options
from contrastive_signals.signal.steps import validate_feature_steps
from contrastive_signals.training.fit import FitConfig

ARCHITECTURE = "curve_cnn"
LABEL_SUBSETS = ("5pc", "20pc", "100pc")
"""Label-fraction names of the ablation; ``afm.split.label_fractions`` gives their values."""


@dataclass(frozen=True)
class SplitParams(LabelledSplitParams):
    label_fractions: dict[str, float] = field(
        default_factory=lambda: {"5pc": 0.05, "20pc": 0.2, "100pc": 1.0})

    def __post_init__(self) -> None:
        super().__post_init__()
        if set(self.label_fractions) != set(LABEL_SUBSETS):
            raise ValueError(f"label_fractions must name exactly {list(LABEL_SUBSETS)} (the "
                             f"ablation's label subsets); got {sorted(self.label_fractions)}")


DERIVATIVE_OPTIONS = ("scale", "smooth_window", "smooth_order")


@dataclass(frozen=True)
class PreprocessingParams:
    steps: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        validate_feature_steps(list(self.steps))
        if sum(step["name"] == "derivative_channel" for step in self.steps) != 1 \
                or self.steps[-1]["name"] != "derivative_channel":
            raise ValueError("steps must end with exactly one derivative_channel step (the "
                             "ablation drops it for the no-derivative input)")
        try:
            check_derivative_options(**self.derivative_options())
        except (TypeError, ValueError) as error:
            raise ValueError(f"steps[{len(self.steps) - 1}] (derivative_channel): {error}") \
                from error

    def derivative_options(self) -> dict[str, Any]:
        """The ``derivative_channel`` step's scale and smoothing (what SimCLR views recompute)."""
        return {k: v for k, v in self.steps[-1].items() if k in DERIVATIVE_OPTIONS}

    def chosen(self, *, derivative: bool) -> list[dict[str, Any]]:
        return [dict(s) for s in self.steps if derivative or s["name"] != "derivative_channel"]


@dataclass(frozen=True, kw_only=True)
class PretrainingParams(MethodParams):
    """``method``: ``simclr`` (training + unlabelled curves), ``supcon`` or ``triplet`` (the
    labelled training curves); ``batch_size`` and ``augmentation`` serve the two-view ones."""

    fit: FitConfig
    batch_size: int = 256
    augmentation: CurveAugmentation = field(default_factory=CurveAugmentation)
    num_threads: int | None = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check(ARCHITECTURE, modality="signal")
        if self.batch_size < 4:
            raise ValueError(f"batch_size must be >= 4, got {self.batch_size}")


@dataclass(frozen=True)
class FinetuningParams:
    fit: FitConfig
    head: HeadStage
    triplet: TripletParams = field(default_factory=TripletParams)
    num_threads: int | None = 2


@dataclass(frozen=True)
class SupervisedParams:
    fit: FitConfig
    classifier: ClassifierParams = field(default_factory=ClassifierParams)
    num_threads: int | None = 2


@dataclass(frozen=True)
class PlotParams:
    examples_per_class: int = 3
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.examples_per_class < 1 or self.tsne_iterations < 250:
            raise ValueError("examples_per_class must be >= 1 and tsne_iterations >= 250")
