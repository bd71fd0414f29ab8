"""Contrastive pretraining: SimCLR (NT-Xent), supervised contrastive and pair contrastive."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.losses import (
    nt_xent_loss,
    pair_contrastive_loss,
    supervised_contrastive_loss,
)
from contrastive_signals.models.encoders import EncoderWithHead, ProjectionHead
from contrastive_signals.models.registry import to_bundle
from contrastive_signals.pipelines.common import EncoderParams, knn_validation
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig, fit
from contrastive_signals.training.history import history_as_metric_steps

LOSSES = ("ntxent", "supcon", "pair")


@dataclass(frozen=True)
class ContrastiveParams:
    loss: str = "ntxent"
    temperature: float = 0.2
    margin: float = 1.0
    batch_size: int = 256
    projection_hidden_dim: int = 256
    projection_dim: int = 64
    encoder: EncoderParams = field(default_factory=EncoderParams)
    augmentation: dict[str, Any] = field(default_factory=dict)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got '{self.loss}'")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.margin <= 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        if self.batch_size < 4:
            raise ValueError(f"batch_size must be >= 4, got {self.batch_size}")
        ViewAugmentation.from_params(dict(self.augmentation))  # fail early on bad augmentation


def contrastive_loss(projections: torch.Tensor, labels: torch.Tensor, config: ContrastiveParams) -> torch.Tensor:
    """Loss of the projections ``[2B, P]`` of two views (first B rows view A, last B view B);
    ``labels`` ``[B]`` are class labels (used by SupCon only)."""
    z_a, z_b = projections.float().chunk(2)
    if config.loss == "ntxent":
        return nt_xent_loss(z_a, z_b, temperature=config.temperature)
    if config.loss == "supcon":
        return supervised_contrastive_loss(projections.float(), labels.repeat(2),
                                           temperature=config.temperature)
    # Pair loss on instance identities: the two views of an image are the positive pair.
    instance = torch.arange(len(z_a), device=projections.device).repeat(2)
    return pair_contrastive_loss(F.normalize(projections.float(), dim=1), instance,
                                 margin=config.margin)


def train_contrastive_encoder(
    features: dict[str, dict[str, torch.Tensor]], params: dict[str, Any], name: str
) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Pretrain an encoder with a contrastive loss on two augmented views per training image.

    Returns:
        the encoder bundle (pre-projection encoder only), the per-epoch history, and the same
        history shaped for MLflow's metric history.
    """
    config = from_params(ContrastiveParams, params, path=f"pretraining.{name}")
    augmentation = ViewAugmentation.from_params(dict(config.augmentation))
    train, val = features["train"], features["val"]
    seed_everything(config.fit.seed)
    in_channels = train["images"].shape[1]
    encoder, encoder_config = config.encoder.build(in_channels, seed=config.fit.seed)
    head = ProjectionHead(encoder.embedding_dim, config.projection_hidden_dim, config.projection_dim)
    model = EncoderWithHead(encoder, head)

    def loss_fn(net, batch, generator):
        images, labels = batch
        view_a, view_b = augmentation.two_views(images, generator=generator)
        return contrastive_loss(net(torch.cat([view_a, view_b])), labels, config)

    result = fit(
        model,
        loss_fn=loss_fn,
        batches=lambda epoch, g: shuffled_minibatches(
            train["images"], train["labels"], batch_size=min(config.batch_size, len(train["labels"])),
            generator=g),
        config=replace(config.fit, name=name),
        validate=knn_validation(train, val) if len(val["labels"]) else None,
    )
    bundle = to_bundle(result.model.encoder, config.encoder.architecture, encoder_config)
    return bundle, result.history, history_as_metric_steps(result.history, prefix=name)
