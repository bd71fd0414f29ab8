"""The classic supervised CNN baseline, trained with cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.data.digits import NUM_CLASSES
from contrastive_signals.models.registry import build_model, to_bundle
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig, fit
from contrastive_signals.training.history import history_as_metric_steps


@dataclass(frozen=True)
class SupervisedParams:
    channels: int = 4
    batch_size: int = 64
    label_smoothing: float = 0.0
    augmentation: dict[str, Any] | None = None
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.augmentation is not None:
            ViewAugmentation.from_params(dict(self.augmentation))


def _accuracy_on(data: dict[str, torch.Tensor]):
    def validate(model) -> dict[str, float]:
        device = next(model.parameters()).device
        logits = model(data["images"].to(device))
        loss = F.cross_entropy(logits.float(), data["labels"].to(device)).item()
        accuracy = (logits.argmax(1).cpu() == data["labels"]).float().mean().item()
        return {"val_loss": loss, "val_acc": accuracy}
    return validate


def train_supervised_classifier(
    features: dict[str, dict[str, torch.Tensor]], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train the tiny supervised CNN on the training split (validation split monitors it).

    Returns:
        the classifier bundle, its per-epoch history and that history shaped for MLflow.
    """
    config = from_params(SupervisedParams, params, path="supervised")
    train, val = features["train"], features["val"]
    seed_everything(config.fit.seed)
    model_config = {"in_channels": train["images"].shape[1], "channels": config.channels,
                    "num_classes": NUM_CLASSES}
    model = build_model("supervised_cnn", model_config, seed=config.fit.seed)
    augmentation = ViewAugmentation.from_params(dict(config.augmentation)) if config.augmentation else None

    def loss_fn(net, batch, generator):
        images, labels = batch
        if augmentation is not None:
            images = augmentation(images, generator=generator)
        return F.cross_entropy(net(images).float(), labels, label_smoothing=config.label_smoothing)

    result = fit(
        model,
        loss_fn=loss_fn,
        batches=lambda epoch, g: shuffled_minibatches(
            train["images"], train["labels"], batch_size=config.batch_size, generator=g),
        config=replace(config.fit, name="supervised"),
        validate=_accuracy_on(val) if len(val["labels"]) else None,
    )
    bundle = to_bundle(result.model, "supervised_cnn", model_config)
    return bundle, result.history, history_as_metric_steps(result.history, prefix="supervised")
