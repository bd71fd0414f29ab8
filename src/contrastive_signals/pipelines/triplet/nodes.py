"""Triplet metric learning: offline triplets or online mining (batch-hard, semi-hard) on
P x K batches, from scratch or from a pretrained encoder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.data.triplet_sampling import offline_triplets, pk_batches
from contrastive_signals.losses import mined_triplet_loss, triplet_margin_loss
from contrastive_signals.models.registry import from_bundle, to_bundle
from contrastive_signals.pipelines.common import EncoderParams, knn_validation
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig, fit
from contrastive_signals.training.history import history_as_metric_steps

SAMPLING = ("offline", "batch_hard", "semi_hard")


@dataclass(frozen=True)
class TripletParams:
    sampling: str = "batch_hard"
    margin: float = 0.2
    metric: str = "euclidean"
    normalize_embeddings: bool = True
    classes_per_batch: int = 10
    samples_per_class: int = 16
    batch_size: int = 128
    augmentation: dict[str, Any] | None = None
    encoder: EncoderParams = field(default_factory=EncoderParams)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got '{self.sampling}'")
        if self.margin <= 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        if self.classes_per_batch < 2 or self.samples_per_class < 2:
            raise ValueError("classes_per_batch and samples_per_class must be >= 2, got "
                             f"{self.classes_per_batch} and {self.samples_per_class}")
        if self.augmentation is not None:
            ViewAugmentation.from_params(dict(self.augmentation))


def _embed(model, images, normalize: bool) -> torch.Tensor:
    z = model(images).float()
    return F.normalize(z, dim=1) if normalize else z


def _batches(train: dict[str, torch.Tensor], config: TripletParams):
    """``(epoch, generator) -> batches`` for the chosen sampling scheme."""
    images, labels = train["images"], train["labels"]
    if config.sampling == "offline":
        def offline(epoch, generator):
            triplets = offline_triplets(labels, generator=generator)
            order = torch.randperm(len(triplets), generator=generator)
            for start in range(0, len(order), config.batch_size):
                chunk = triplets[order[start:start + config.batch_size]]
                yield images[chunk[:, 0]], images[chunk[:, 1]], images[chunk[:, 2]]
        return offline

    def online(epoch, generator):
        for idx in pk_batches(labels, classes_per_batch=config.classes_per_batch,
                              samples_per_class=config.samples_per_class, generator=generator):
            yield images[idx], labels[idx]
    return online


def _loss_fn(config: TripletParams):
    augmentation = ViewAugmentation.from_params(dict(config.augmentation)) if config.augmentation else None

    def augment(images, generator):
        return augmentation(images, generator=generator) if augmentation is not None else images

    if config.sampling == "offline":
        def offline_loss(model, batch, generator):
            anchor, positive, negative = (augment(b, generator) for b in batch)
            z = _embed(model, torch.cat([anchor, positive, negative]), config.normalize_embeddings)
            n = len(anchor)
            index = torch.arange(n, device=z.device)
            return triplet_margin_loss(z, (index, index + n, index + 2 * n), margin=config.margin,
                                       metric=config.metric)
        return offline_loss

    mining = config.sampling

    def online_loss(model, batch, generator):
        images, labels = batch
        z = _embed(model, augment(images, generator), config.normalize_embeddings)
        return mined_triplet_loss(z, labels, margin=config.margin, mining=mining, metric=config.metric)
    return online_loss


def train_triplet_encoder(
    features: dict[str, dict[str, torch.Tensor]], params: dict[str, Any], *, name: str,
    initial_encoder: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train an encoder with a triplet loss; start from ``initial_encoder`` (a bundle) if given.

    Returns:
        the encoder bundle, its per-epoch history and that history shaped for MLflow.
    """
    config = from_params(TripletParams, params, path=f"triplet ({name})")
    train, val = features["train"], features["val"]
    seed_everything(config.fit.seed)
    if initial_encoder is not None:
        model = from_bundle(initial_encoder).train()
        architecture, model_config = initial_encoder["architecture"], initial_encoder["config"]
    else:
        architecture = config.encoder.architecture
        model, model_config = config.encoder.build(train["images"].shape[1], seed=config.fit.seed)
    result = fit(
        model,
        loss_fn=_loss_fn(config),
        batches=_batches(train, config),
        config=replace(config.fit, name=name),
        validate=knn_validation(train, val) if len(val["labels"]) else None,
    )
    bundle = to_bundle(result.model, architecture, model_config)
    return bundle, result.history, history_as_metric_steps(result.history, prefix=name)


def train_triplet_encoder_from_scratch(features, params, *, name: str):
    """Triplet training from randomly initialised weights."""
    return train_triplet_encoder(features, params, name=name)


def train_triplet_encoder_from_pretrained(features, initial_encoder, params, *, name: str):
    """Triplet fine-tuning of a pretrained encoder bundle."""
    return train_triplet_encoder(features, params, name=name, initial_encoder=initial_encoder)
