"""Triplet metric learning, written once for every modality whose encoder gives an instance
embedding: offline triplets (classic MNIST triplet-dataset semantics) or triplets mined online
(batch-hard, semi-hard, all) from P x K batches."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.config import require_bool
from contrastive_signals.data.triplet_sampling import offline_triplets, pk_batches
from contrastive_signals.losses import METRICS, MINERS, mined_triplet_loss, triplet_margin_loss
from contrastive_signals.methods.base import InstanceEncoder, Requirements, StatelessHooks
from contrastive_signals.training.ranks import local_forward

SAMPLING = ("offline", *MINERS)
REQUIRES = Requirements(("image", "signal", "series"), ("instance", "per_step"), needs_labels=True)


@dataclass(frozen=True)
class TripletParams:
    """``sampling``: ``offline`` (one random triplet per sample and epoch, ``batch_size``
    triplets a step) or a miner (``batch_hard``, ``semi_hard``, ``all``) on P x K batches of
    ``classes_per_batch`` x ``samples_per_class``; ``batches_per_epoch`` chains P x K passes
    (useful on small labelled sets), ``None`` = one pass over the data per epoch."""

    sampling: str = "batch_hard"
    margin: float = 0.2
    metric: str = "euclidean"
    normalize_embeddings: bool = True
    classes_per_batch: int = 10
    samples_per_class: int = 16
    batches_per_epoch: int | None = None
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got '{self.sampling}'")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got '{self.metric}'")
        if not self.margin > 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        if self.classes_per_batch < 2 or self.samples_per_class < 2:
            raise ValueError("classes_per_batch and samples_per_class must be >= 2, got "
                             f"{self.classes_per_batch} and {self.samples_per_class}")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be >= 1 or null, got "
                             f"{self.batches_per_epoch}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        require_bool(self, ("normalize_embeddings",))


def pk_index_batches(labels: Tensor, params: TripletParams, generator: torch.Generator
                     ) -> Iterator[Tensor]:
    """Index batches ``[P * K]`` of one epoch: one P x K pass over ``labels`` ``[N]``, or
    ``batches_per_epoch`` batches from chained passes. P is capped at the number of classes."""
    classes = min(params.classes_per_batch, int(labels.unique().numel()))

    def one_pass() -> Iterator[Tensor]:
        return pk_batches(labels, classes_per_batch=classes,
                          samples_per_class=params.samples_per_class, generator=generator)

    if params.batches_per_epoch is None:
        return one_pass()
    chained = itertools.chain.from_iterable(one_pass() for _ in itertools.count())
    return itertools.islice(chained, params.batches_per_epoch)


class TripletMethod(StatelessHooks):
    """Triplet loss over any instance (or pooled per-step) encoder; no head.

    Online batches are ``(x, [mask,] labels)``; offline batches ``(anchor, positive,
    negative)`` (image and signal data). ``augment``, when given, is applied to every input
    (``augment(x, generator=)``).
    """


    def __init__(self, params: TripletParams, *, modality: str, output: str,
                 augment: Callable[..., Tensor] | None = None):
        if params.sampling == "offline" and modality == "series":
            raise ValueError("offline triplets are for image and signal data; use a miner "
                             "(batch_hard, semi_hard, all) for series")
        self.params, self.augment = params, augment
        self.modality, self.output = modality, output
        self.requires = REQUIRES

    def build(self, encoder: nn.Module, *, seed: int = 0) -> InstanceEncoder:
        return InstanceEncoder(encoder, self.output)

    def _embed(self, model: nn.Module, x: Tensor, mask: Tensor | None,
               generator: torch.Generator) -> Tensor:
        if self.augment is not None:
            x = self.augment(x, generator=generator)
        z = local_forward(model, x, mask, generator=generator).float()
        return F.normalize(z, dim=1) if self.params.normalize_embeddings else z

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        params = self.params
        if params.sampling == "offline":
            anchor, positive, negative = (self.augment(b, generator=generator)
                                          if self.augment is not None else b for b in batch)
            z = torch.cat(local_forward(
                lambda *parts: model(torch.cat(parts)).chunk(3), anchor, positive, negative)).float()
            z = F.normalize(z, dim=1) if params.normalize_embeddings else z
            n = len(anchor)
            index = torch.arange(n, device=z.device)
            return triplet_margin_loss(z, (index, index + n, index + 2 * n),
                                       margin=params.margin, metric=params.metric)
        if self.modality == "series":
            x, mask, labels = batch
        else:
            (x, labels), mask = batch, None
        return mined_triplet_loss(self._embed(model, x, mask, generator), labels,
                                  margin=params.margin, mining=params.sampling,
                                  metric=params.metric)

    def batches(self, x: Tensor, labels: Tensor, mask: Tensor | None = None
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, ...]]]:
        """Fit's batches over ``x`` ``[N, ...]`` with ``labels`` ``[N]`` (``mask`` for series)."""
        params = self.params
        if params.sampling == "offline":
            def offline(epoch: int, generator: torch.Generator):
                triplets = offline_triplets(labels, generator=generator)
                order = torch.randperm(len(triplets), generator=generator)
                for start in range(0, len(order), params.batch_size):
                    chunk = triplets[order[start:start + params.batch_size]]
                    yield x[chunk[:, 0]], x[chunk[:, 1]], x[chunk[:, 2]]
            return offline

        def online(epoch: int, generator: torch.Generator):
            for index in pk_index_batches(labels, params, generator):
                yield ((x[index], labels[index]) if mask is None
                       else (x[index], mask[index], labels[index]))
        return online

    @staticmethod
    def export(model: InstanceEncoder) -> nn.Module:
        return model.encoder
