"""Supervised classification over any encoder, written once: cross-entropy (with label
smoothing) or the multi-class hinge loss, on the encoder's own logits (encoders whose
``forward`` is a classifier) or on a head over its instance embedding."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.losses.hinge import KINDS as HINGE_KINDS
from contrastive_signals.losses.hinge import multiclass_hinge_loss
from contrastive_signals.methods.base import (
    EncoderWithHead,
    InstanceEncoder,
    ProjectionHead,
    Requirements,
    StatelessHooks,
)
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.ranks import local_forward

LOSSES = ("cross_entropy", "hinge")
REQUIRES = Requirements(("image", "signal", "series"), ("instance", "per_step"), needs_labels=True)


@dataclass(frozen=True)
class ClassifierParams:
    """``loss``: ``cross_entropy`` (``label_smoothing``) or ``hinge`` (``hinge_kind``:
    ``weston_watkins`` or ``crammer_singer``, ``hinge_margin``). ``head_hidden_dim``: the head
    on the instance embedding is ``Linear`` when ``None``, else ``Linear -> ReLU -> Linear``
    (not used by encoders that classify themselves)."""

    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    hinge_kind: str = "weston_watkins"
    hinge_margin: float = 1.0
    head_hidden_dim: int | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got '{self.loss}'")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.hinge_kind not in HINGE_KINDS:
            raise ValueError(f"hinge_kind must be one of {HINGE_KINDS}, got '{self.hinge_kind}'")
        if not self.hinge_margin > 0:
            raise ValueError(f"hinge_margin must be > 0, got {self.hinge_margin}")
        if self.head_hidden_dim is not None and self.head_hidden_dim < 1:
            raise ValueError(f"head_hidden_dim must be >= 1 or null, got {self.head_hidden_dim}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")


def classification_loss(logits: Tensor, labels: Tensor, params: ClassifierParams) -> Tensor:
    """The configured loss of ``logits`` ``[B, K]`` against ``labels`` ``[B]``."""
    if params.loss == "hinge":
        return multiclass_hinge_loss(logits.float(), labels, margin=params.hinge_margin,
                                     kind=params.hinge_kind)
    return F.cross_entropy(logits.float(), labels, label_smoothing=params.label_smoothing)


class ClassifierMethod(StatelessHooks):
    """Supervised training of ``num_classes`` classes. Batches are ``(x, [mask,] labels)``;
    ``augment``, when given, makes a view of each input (``augment(x, generator=)``).

    ``self_classifying``: the encoder's ``forward`` already returns logits (its registry
    entry's ``classifier`` flag); otherwise a head is added on its instance embedding.
    """


    def __init__(self, params: ClassifierParams, *, modality: str, output: str,
                 num_classes: int, self_classifying: bool,
                 augment: Callable[..., Tensor] | None = None):
        self.params, self.augment = params, augment
        self.modality, self.output = modality, output
        self.num_classes, self.self_classifying = num_classes, self_classifying
        self.requires = REQUIRES

    def build(self, encoder: nn.Module, *, seed: int) -> nn.Module:
        """The encoder itself when it classifies, else encoder + head (head drawn from
        ``seed``)."""
        if self.self_classifying:
            return encoder
        instance = InstanceEncoder(encoder, self.output)
        hidden = self.params.head_hidden_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = (nn.Linear(instance.embedding_dim, self.num_classes) if hidden is None else
                    ProjectionHead(instance.embedding_dim, hidden, self.num_classes,
                                   batch_norm=False))
        return EncoderWithHead(instance, head)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        if self.modality == "series":
            x, mask, labels = batch
            logits = local_forward(model, x, mask, generator=generator)
        else:
            x, labels = batch
            if self.augment is not None:
                x = self.augment(x, generator=generator)
            logits = local_forward(model, x)
        return classification_loss(logits, labels, self.params)

    def batches(self, *tensors: Tensor
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, ...]]]:
        """Shuffled mini-batches of aligned ``tensors`` (labels last)."""
        size = min(self.params.batch_size, len(tensors[0]))
        return lambda epoch, generator: shuffled_minibatches(*tensors, batch_size=size,
                                                             generator=generator)

    @staticmethod
    def export(model: nn.Module) -> nn.Module:
        return model
