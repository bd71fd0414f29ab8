"""Supervised digits classifiers (the classic tiny CNN, the ViT with a head): cross-entropy or
the multi-class hinge loss."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.data.digits import NUM_CLASSES
from contrastive_signals.methods import supervised
from contrastive_signals.methods.base import check_compatible, fit_method
from contrastive_signals.methods.supervised import ClassifierMethod, ClassifierParams
from contrastive_signals.models.registry import EncoderSpec
from contrastive_signals.pipelines.common import Features, trained_outputs
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig
from contrastive_signals.training.validation import classification_validation


@dataclass(frozen=True)
class SupervisedParams:
    method: ClassifierParams = field(default_factory=ClassifierParams)
    encoder: EncoderSpec = field(default_factory=lambda: EncoderSpec("supervised_cnn"))
    augmentation: dict[str, Any] | None = None
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.augmentation is not None:
            ViewAugmentation.from_params(dict(self.augmentation))
        check_compatible("supervised", supervised.REQUIRES, self.encoder.architecture)


def train_supervised_classifier(features: Features, params: dict[str, Any], *,
                                name: str = "supervised"):
    """Train a classifier on the training split (the validation split monitors it).

    Returns:
        the classifier bundle, its per-epoch history and that history shaped for MLflow.
    """
    config = from_params(SupervisedParams, params, path=name)
    train, val = features["train"], features["val"]
    seed_everything(config.fit.seed)
    spec = config.encoder
    extra = {"num_classes": NUM_CLASSES} if spec.entry.classifier else {}
    encoder_spec = replace(spec, config={**spec.config, **extra})
    encoder, encoder_config = encoder_spec.build(train["images"].shape[1], seed=config.fit.seed)
    augment = (ViewAugmentation.from_params(dict(config.augmentation))
               if config.augmentation else None)
    method = ClassifierMethod(config.method, modality="image", output=spec.entry.output,
                              num_classes=NUM_CLASSES, self_classifying=spec.entry.classifier,
                              augment=augment)
    trained, result = fit_method(
        method, encoder, seed=config.fit.seed, config=replace(config.fit, name=name),
        batches=method.batches(train["images"], train["labels"]),
        validate=classification_validation(val["images"], val["labels"])
        if len(val["labels"]) else None)
    return trained_outputs(trained, spec.architecture, encoder_config, result.history, name=name)
