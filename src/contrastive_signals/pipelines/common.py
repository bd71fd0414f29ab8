"""Pieces shared by the training nodes: typed encoder settings and validation callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contrastive_signals.models.registry import ARCHITECTURES, build_model, embed


@dataclass(frozen=True)
class EncoderParams:
    """Which encoder to build; ``in_channels`` is taken from the data, not from YAML."""

    architecture: str = "digit_cnn"
    embedding_dim: int = 64
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got "
                             f"'{self.architecture}'")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")

    def model_config(self, in_channels: int) -> dict[str, Any]:
        config: dict[str, Any] = {"in_channels": in_channels, "embedding_dim": self.embedding_dim}
        if self.architecture == "digit_cnn":
            config["batch_norm"] = self.batch_norm
        return config

    def build(self, in_channels: int, *, seed: int) -> tuple[nn.Module, dict[str, Any]]:
        config = self.model_config(in_channels)
        return build_model(self.architecture, config, seed=seed), config


def knn_validation(train: dict[str, torch.Tensor], val: dict[str, torch.Tensor], *,
                   k: int = 5, device: torch.device | str = "cpu"):
    """A ``validate`` callback for ``fit``: cosine kNN accuracy of validation images against
    the training images in the current embedding space (a cheap proxy for probe quality)."""

    def validate(model: nn.Module) -> dict[str, float]:
        model_device = next(model.parameters()).device
        train_z = nn.functional.normalize(embed(model, train["images"], device=model_device), dim=1)
        val_z = nn.functional.normalize(embed(model, val["images"], device=model_device), dim=1)
        similarity = val_z @ train_z.T
        neighbours = similarity.topk(k, dim=1).indices
        votes = train["labels"][neighbours]
        predicted = torch.mode(votes, dim=1).values
        return {"val_knn_acc": (predicted == val["labels"]).float().mean().item()}

    return validate
