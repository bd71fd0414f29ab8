"""Triplet metric learning of a digits encoder: offline triplets or online mining
(batch-hard, semi-hard) on P x K batches, from scratch or from a pretrained encoder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.methods import triplet
from contrastive_signals.methods.base import check_compatible, fit_method
from contrastive_signals.methods.triplet import TripletMethod, TripletParams
from contrastive_signals.models.registry import EncoderSpec, from_bundle
from contrastive_signals.pipelines.common import Features, digits_knn_validation, trained_outputs
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig


@dataclass(frozen=True)
class TripletRunParams:
    method: TripletParams = field(default_factory=TripletParams)
    augmentation: dict[str, Any] | None = None
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.augmentation is not None:
            ViewAugmentation.from_params(dict(self.augmentation))
        check_compatible("triplet", triplet.REQUIRES, self.encoder.architecture)


def train_triplet_encoder(features: Features, params: dict[str, Any], *, name: str,
                          initial_encoder: dict[str, Any] | None = None):
    """Train an encoder with a triplet loss; start from ``initial_encoder`` (a bundle) if given.

    Returns:
        the encoder bundle, its per-epoch history and that history shaped for MLflow.
    """
    config = from_params(TripletRunParams, params, path=f"triplet ({name})")
    train = features["train"]
    seed_everything(config.fit.seed)
    if initial_encoder is not None:
        encoder = from_bundle(initial_encoder, modality="image").train()
        architecture, encoder_config = initial_encoder["architecture"], initial_encoder["config"]
    else:
        architecture = config.encoder.architecture
        encoder, encoder_config = config.encoder.build(train["images"].shape[1],
                                                       seed=config.fit.seed)
    augment = (ViewAugmentation.from_params(dict(config.augmentation))
               if config.augmentation else None)
    method = TripletMethod(config.method, modality="image", augment=augment,
                           output=config.encoder.entry.output)
    trained, result = fit_method(
        method, encoder, seed=config.fit.seed, config=replace(config.fit, name=name),
        batches=method.batches(train["images"], train["labels"]),
        validate=digits_knn_validation(features))
    return trained_outputs(trained, architecture, encoder_config, result.history, name=name)


def train_triplet_encoder_from_scratch(features, params, *, name: str):
    """Triplet training from randomly initialised weights."""
    return train_triplet_encoder(features, params, name=name)


def train_triplet_encoder_from_pretrained(features, initial_encoder, params, *, name: str):
    """Triplet fine-tuning of a pretrained encoder bundle."""
    return train_triplet_encoder(features, params, name=name, initial_encoder=initial_encoder)
