"""Training with a method in one call: the method builds its model around the encoder, fit
runs its loss on its batches and steps its hooks; and the two-stage recipe of a metric-learned
encoder with a classifier head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor, nn

from contrastive_signals.config import require_bool
from contrastive_signals.methods.base import fit_method
from contrastive_signals.methods.select import method_batches
from contrastive_signals.methods.supervised import ClassifierMethod, ClassifierParams
from contrastive_signals.methods.triplet import TripletMethod, TripletParams
from contrastive_signals.models.registry import embed
from contrastive_signals.training.fit import FitConfig, FitResult, ValidateFn
from contrastive_signals.training.validation import classification_validation, knn_validation

Scores = Callable[[np.ndarray, np.ndarray], dict[str, float]]


def train_method(method: Any, encoder: nn.Module, *, x: Tensor, labels: Tensor | None = None,
                 mask: Tensor | None = None, batch_size: int = 2, config: FitConfig,
                 validate: ValidateFn | None = None) -> FitResult:
    """``method.build(encoder)`` trained by :func:`~contrastive_signals.training.fit.fit` on
    ``x`` ``[N, ...]`` (``labels`` ``[N]``, ``mask`` ``[N, T]`` where the method reads them;
    batches as :func:`~.select.method_batches` makes them); the head weights come from
    ``config.seed``."""
    batches = method_batches(method, x, labels=labels, mask=mask, batch_size=batch_size)
    return fit_method(method, encoder, batches=batches, config=config, seed=config.seed,
                      validate=validate)[1]


def train_classifier(model: nn.Module, data: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                     params: ClassifierParams, config: FitConfig, *, scores: Scores | None = None
                     ) -> dict[str, list[float]]:
    """Supervised training of ``model``, whose ``forward`` gives class logits, on ``data`` =
    ``(inputs [N, ...], labels [N])``; ``val_loss`` and ``val_<score>`` of ``scores`` (default:
    accuracy) on ``val`` per epoch. Returns the history."""
    method = ClassifierMethod(params, modality="signal", output="instance",
                              num_classes=0, self_classifying=True)
    return train_method(method, model, x=data[0], labels=data[1], config=config,
                        validate=classification_validation(*val, scores=scores)).history


@dataclass(frozen=True)
class HeadStage:
    """The classifier stage after triplet fine-tuning: ``classifier`` trained by ``fit``, on
    the frozen embeddings (only the model's ``head`` learns) or, with ``train_encoder``,
    through the whole model."""

    fit: FitConfig
    classifier: ClassifierParams
    train_encoder: bool = False

    def __post_init__(self) -> None:
        require_bool(self, ("train_encoder",))


def triplet_then_head(model: nn.Module, data: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                      *, triplet: TripletParams, triplet_fit: FitConfig, head: HeadStage,
                      scores: Scores | None = None) -> dict[str, list[float]]:
    """Fine-tune ``model`` (an instance encoder with ``embed`` ``[B, ...] -> [B, D]`` and a
    classifier ``head``, ``forward`` = ``head(embed(x))``) in place: mined triplets on
    ``data`` = ``(x [N, ...], labels [N])`` (kNN accuracy on ``val`` per epoch), then the
    classifier stage. Returns the history, ``triplet.*`` and ``head.*``."""
    method = TripletMethod(triplet, modality="signal", output="instance")
    tuned = train_method(method, model, x=data[0], labels=data[1], config=triplet_fit,
                         validate=knn_validation(*data, *val)).history
    if head.train_encoder:
        trained = train_classifier(model, data, val, head.classifier, head.fit, scores=scores)
    else:
        frozen = [(embed(model, x), y) for x, y in (data, val)]
        trained = train_classifier(model.head, *frozen, head.classifier, head.fit, scores=scores)
    return {**{f"triplet.{k}": v for k, v in tuned.items()},
            **{f"head.{k}": v for k, v in trained.items()}}
