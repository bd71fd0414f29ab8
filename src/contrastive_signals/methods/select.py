"""A method chosen by name in parameters, each method's settings in a block beside it, and the
check, made while the parameters are parsed, that the method fits the chosen encoder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor

from contrastive_signals.methods import triplet, ts2vec, two_view
from contrastive_signals.methods.averaging import WeightAveraging
from contrastive_signals.methods.base import Requirements, check_compatible
from contrastive_signals.methods.softclt import SoftCltMethod, SoftCltParams
from contrastive_signals.methods.supervised import ClassifierMethod
from contrastive_signals.methods.triplet import TripletMethod, TripletParams
from contrastive_signals.methods.ts2vec import Ts2VecMethod, Ts2VecParams
from contrastive_signals.methods.two_view import TwoViewMethod, TwoViewParams, ViewMaker
from contrastive_signals.models.registry import EncoderEntry, get_entry, list_encoders
from contrastive_signals.training.batches import BatchesFn

METHODS = (*two_view.OBJECTIVES, "triplet", "ts2vec", "softclt")
"""``simclr``, ``supcon``, ``pair`` (the two-view family), ``triplet``, ``ts2vec`` and
``softclt`` (TS2Vec with SoftCLT's soft assignments)."""


def requirements(method: str) -> Requirements:
    """What ``method`` needs of its encoder and data."""
    if method in two_view.OBJECTIVES:
        return replace(two_view.REQUIRES, needs_labels=method == "supcon")
    return {"triplet": triplet.REQUIRES, "ts2vec": ts2vec.REQUIRES,
            "softclt": ts2vec.REQUIRES}[method]


@dataclass(frozen=True)
class MethodParams:
    """``method``: one of :data:`METHODS`; only the chosen method's block is read
    (``two_view`` for simclr / supcon / pair, whose ``objective`` is ``method``; ``triplet``;
    ``ts2vec``; ``softclt``). Pipelines extend this with their encoder and budget fields."""

    method: str = "simclr"
    two_view: TwoViewParams = field(default_factory=TwoViewParams)
    triplet: TripletParams = field(default_factory=TripletParams)
    ts2vec: Ts2VecParams = field(default_factory=Ts2VecParams)
    softclt: SoftCltParams = field(default_factory=SoftCltParams)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got '{self.method}'")
        if self.two_view.objective not in ("simclr", self.method):
            raise ValueError(f"two_view.objective is set by method ('{self.method}'); leave it "
                             f"out (got '{self.two_view.objective}')")

    @property
    def requires(self) -> Requirements:
        return requirements(self.method)

    def check(self, architecture: str, *, modality: str) -> EncoderEntry:
        """The entry of ``architecture``; a ``ValueError`` naming the method and the encoder
        when they do not fit, or when the encoder does not read ``modality`` (the data's)."""
        entry = check_compatible(self.method, self.requires, architecture)
        if entry.modality != modality:
            fit = [name for name in list_encoders(modality)
                   if get_entry(name).output in self.requires.outputs]
            raise ValueError(f"method '{self.method}' on {modality} data needs an encoder of "
                             f"{modality} data; '{architecture}' reads {entry.modality} data. "
                             f"Encoders that fit: {fit}")
        return entry

    def build(self, entry: EncoderEntry, *, views: ViewMaker | None = None, seed: int) -> Any:
        """The method object for an encoder of ``entry``; ``views`` make the two-view methods'
        views; ``seed`` seeds TS2Vec's own random streams."""
        if self.method == "ts2vec":
            return Ts2VecMethod(self.ts2vec, seed=seed)
        if self.method == "softclt":
            return SoftCltMethod(self.softclt, seed=seed)
        if self.method == "triplet":
            return TripletMethod(self.triplet, modality=entry.modality, output=entry.output)
        if views is None:
            raise ValueError(f"method '{self.method}' needs a view augmentation")
        return TwoViewMethod(replace(self.two_view, objective=self.method), views,
                             modality=entry.modality, output=entry.output)


def method_batches(method: Any, x: Tensor, *, labels: Tensor | None = None,
                   mask: Tensor | None = None, batch_size: int) -> BatchesFn:
    """Fit's batches for ``method`` (or its :class:`WeightAveraging`) over ``x`` ``[N, ...]``
    (``mask`` ``[N, T]`` for series; ``labels`` ``[N]`` for the methods that read them): P x K
    index batches for triplet mining, TS2Vec's ``(x, mask)``, the two-view methods'
    ``(x[, mask][, labels])`` batches of ``batch_size``, the classifier's ``(x[, mask],
    labels)``."""
    core = method.method if isinstance(method, WeightAveraging) else method
    if core.requires.needs_labels and labels is None:
        raise ValueError(f"{type(core).__name__} needs the labels of the training data")
    if isinstance(core, TripletMethod):
        return core.batches(x, labels, mask)
    if isinstance(core, Ts2VecMethod):
        return core.batches(x, mask, batch_size=batch_size)
    if isinstance(core, ClassifierMethod):  # its own params.batch_size
        return core.batches(*(t for t in (x, mask, labels) if t is not None))
    extra = (labels,) if core.requires.needs_labels else ()
    return core.batches(*(t for t in (x, mask, *extra) if t is not None), batch_size=batch_size)
