"""Pretraining any method on series ``[N, T, C]`` (mask ``[N, T]``) with any registered series
encoder, for a budget of optimiser steps as TS2Vec counts it, optionally evaluating the running
average of the weights (TS2Vec's SWA); and a supervised series classifier."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from contrastive_signals.augment.signals import SignalAugmentation
from contrastive_signals.config import require_bool
from contrastive_signals.methods import supervised
from contrastive_signals.methods.averaging import WeightAveraging
from contrastive_signals.methods.base import check_compatible
from contrastive_signals.methods.select import MethodParams, method_batches
from contrastive_signals.methods.supervised import ClassifierMethod, ClassifierParams
from contrastive_signals.methods.train import train_method
from contrastive_signals.methods.triplet import TripletMethod
from contrastive_signals.methods.ts2vec import Ts2VecMethod
from contrastive_signals.models.registry import build_model, get_entry, to_bundle
from contrastive_signals.training.batches import (
    BatchesFn,
    batches_per_epoch,
    default_iterations,
    iteration_budget,
)
from contrastive_signals.training.device import seeded_global_rng
from contrastive_signals.training.fit import FitConfig, FitResult, fit


@dataclass(frozen=True)
class SeriesPretrainParams(MethodParams):
    """A method (``method`` and its block, see :class:`MethodParams`) on the registered series
    encoder ``architecture`` (``encoder``: its config; ``in_channels`` comes from the data),
    for ``iterations`` optimiser steps of ``batch_size`` series (``None``: TS2Vec's rule, as
    many series drawn at any batch size, see
    :func:`~contrastive_signals.training.batches.default_iterations`; triplet batches are P x K).
    ``iteration_scale``: train for this fraction of that budget (rounded up), so that a method
    whose step costs more than TS2Vec's can be run at TS2Vec's cost. ``swa``: evaluate the
    running average of the weights. ``augmentation``: the two-view methods' views."""

    method: str = "ts2vec"
    architecture: str = "dilated_conv"
    encoder: dict[str, Any] = field(default_factory=dict)
    iterations: int | None = 200
    iteration_scale: float = 1.0
    batch_size: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.01  # torch's AdamW default, which TS2Vec uses
    swa: bool = True
    seed: int = 42
    augmentation: SignalAugmentation = field(default_factory=SignalAugmentation)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check(self.architecture, modality="series")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not 0 < self.iteration_scale <= 1:  # also refuses NaN
            raise ValueError(f"iteration_scale must lie in (0, 1], got {self.iteration_scale}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if "in_channels" in self.encoder:
            raise ValueError("encoder.in_channels comes from the data; leave it out")
        require_bool(self, ("swa",))

    def encoder_config(self, channels: int) -> dict[str, Any]:
        """The registry config of the encoder for series of ``channels`` channels."""
        return {"in_channels": channels, **self.encoder}


def series_batches(method: Any, x: Tensor, mask: Tensor, labels: Tensor | None, *,
                   batch_size: int, iterations: int) -> tuple[int, BatchesFn]:
    """Fit's ``(epochs, batches)`` for ``method`` (:func:`method_batches`) giving exactly
    ``iterations`` batches; an epoch is one pass of ``batch_size`` batches over ``x``, or
    ``batches_per_epoch`` (else one pass of) P x K batches for triplet mining."""
    core = method.method if isinstance(method, WeightAveraging) else method
    per_epoch = batches_per_epoch(len(x), batch_size)
    if isinstance(core, TripletMethod):
        params = core.params
        classes = min(params.classes_per_batch, int(labels.unique().numel()))
        per_epoch = params.batches_per_epoch or max(
            1, len(x) // (classes * params.samples_per_class))
    batches = method_batches(method, x, labels=labels, mask=mask, batch_size=batch_size)
    return iteration_budget(batches, iterations=iterations, per_epoch=per_epoch)


def scaled_budget(iterations: int, scale: float) -> int:
    """``scale`` (in ``(0, 1]``) of ``iterations`` optimiser steps, rounded up: at least one."""
    return max(1, math.ceil(iterations * scale))


def _all_steps(x: Tensor, mask: Tensor | None) -> Tensor:
    return torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask


def pretrain_series(x: Tensor, mask: Tensor | None, params: SeriesPretrainParams, *,
                    labels: Tensor | None = None, name: str, progress: bool = False
                    ) -> tuple[nn.Module, FitResult]:
    """Pretrain ``params.method`` on series ``x`` ``[N, T, C]`` (mask ``[N, T]``, ``None``:
    every step observed; ``labels`` ``[N]`` are read by SupCon and triplet only) on the CPU.

    Returns:
        the encoder to evaluate (per-step, ``[B, T, C] -> [B, T, D]``; the weight average when
        ``params.swa``) in eval mode, and the fit result (history of the training loss).
    """
    entry, mask = get_entry(params.architecture), _all_steps(x, mask)
    method = params.build(entry, views=params.augmentation, seed=params.seed)
    config = params.encoder_config(x.shape[2])
    # Layers that draw from torch's global generator (the Transformer's dropout) draw from
    # this seed, so the same parameters give the same encoder whatever ran before.
    with seeded_global_rng(params.seed):
        encoder = (method.build_encoder(params.architecture, config)
                   if isinstance(method, Ts2VecMethod)
                   else build_model(params.architecture, config, seed=params.seed))
        if params.swa:
            method = WeightAveraging(method)
        model = method.build(encoder, seed=params.seed)
        epochs, batches = series_batches(
            method, x, mask, labels, batch_size=params.batch_size,
            iterations=scaled_budget(params.iterations or default_iterations(
                x, params.batch_size), params.iteration_scale))
        fit_config = FitConfig(epochs=epochs, learning_rate=params.learning_rate,
                               weight_decay=params.weight_decay, seed=params.seed,
                               cosine_schedule=False, amp=False, progress=progress, name=name,
                               device="cpu")
        result = fit(model, loss_fn=method.loss, batches=batches, config=fit_config,
                     hooks=method)
    return method.export(result.model).eval(), result


def pretrain_series_bundle(x: Tensor, mask: Tensor | None, params: SeriesPretrainParams, *,
                           labels: Tensor | None = None, name: str
                           ) -> tuple[dict[str, Any], dict[str, list[float]], float]:
    """:func:`pretrain_series` as ``(encoder bundle, history, wall seconds)``."""
    start = time.perf_counter()
    encoder, result = pretrain_series(x, mask, params, labels=labels, name=name)
    seconds = time.perf_counter() - start
    return (to_bundle(encoder, params.architecture, params.encoder_config(x.shape[2])),
            result.history, seconds)


@dataclass(frozen=True)
class SeriesClassifierParams:
    """The registered series encoder ``architecture`` (config ``encoder``) with the
    ``classifier``'s head on its pooled embedding, trained end to end with labels by ``fit``."""

    fit: FitConfig
    architecture: str = "dilated_conv"
    encoder: dict[str, Any] = field(default_factory=dict)
    classifier: ClassifierParams = field(default_factory=ClassifierParams)

    def __post_init__(self) -> None:
        check_compatible("supervised", supervised.REQUIRES, self.architecture)
        get_entry(self.architecture, modality="series")


def train_series_classifier(x: Tensor, mask: Tensor | None, labels: Tensor,
                            params: SeriesClassifierParams, *, name: str) -> nn.Module:
    """The classifier ``(x [B, T, C], mask [B, T] | None) -> logits [B, K]`` trained on ``x``
    ``[N, T, C]`` (mask ``[N, T]``, ``None``: every step observed) and ``labels`` ``[N]``
    (``K = max label + 1``), in eval mode; layers drawing from torch's global generator draw
    from ``params.fit.seed``."""
    entry = get_entry(params.architecture)
    method = ClassifierMethod(params.classifier, modality="series", output=entry.output,
                              num_classes=int(labels.max()) + 1, self_classifying=entry.classifier)
    with seeded_global_rng(params.fit.seed):
        encoder = build_model(params.architecture, {"in_channels": x.shape[2], **params.encoder},
                              seed=params.fit.seed)
        return train_method(method, encoder, x=x, labels=labels, mask=_all_steps(x, mask),
                            config=replace(params.fit, name=name)).model
