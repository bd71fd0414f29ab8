"""Contrastive pretraining of a digits encoder by a two-view method (SimCLR, SupCon, pair)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.methods import two_view
from contrastive_signals.methods.base import check_compatible, fit_method
from contrastive_signals.methods.two_view import TwoViewMethod, TwoViewParams
from contrastive_signals.models.registry import EncoderSpec
from contrastive_signals.pipelines.common import Features, digits_knn_validation, trained_outputs
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig


@dataclass(frozen=True)
class PretrainParams:
    method: TwoViewParams = field(default_factory=TwoViewParams)
    batch_size: int = 256
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    augmentation: dict[str, Any] = field(default_factory=dict)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.batch_size < 4:
            raise ValueError(f"batch_size must be >= 4, got {self.batch_size}")
        ViewAugmentation.from_params(dict(self.augmentation))  # fail early on bad augmentation
        check_compatible(self.method.objective, two_view.REQUIRES, self.encoder.architecture)


def train_contrastive_encoder(features: Features, params: dict[str, Any], name: str):
    """Pretrain an encoder on two augmented views per training image.

    Returns:
        the encoder bundle (without the projection head), the per-epoch history, and the same
        history shaped for MLflow's metric history.
    """
    config = from_params(PretrainParams, params, path=f"pretraining.{name}")
    train = features["train"]
    seed_everything(config.fit.seed)
    encoder, encoder_config = config.encoder.build(train["images"].shape[1], seed=config.fit.seed)
    method = TwoViewMethod(config.method, ViewAugmentation.from_params(dict(config.augmentation)),
                           modality="image", output=config.encoder.entry.output)
    trained, result = fit_method(
        method, encoder, seed=config.fit.seed, config=replace(config.fit, name=name),
        batches=method.batches(train["images"], train["labels"], batch_size=config.batch_size),
        validate=digits_knn_validation(features))
    return trained_outputs(trained, config.encoder.architecture, encoder_config, result.history,
                           name=name)
