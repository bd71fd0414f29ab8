"""A 1-D CNN for fixed-length curves (AFM force curves, ``[B, C, L]``).

Convolution blocks (conv k, BatchNorm, ReLU, max-pool 2) halve the length ``blocks`` times;
the feature map is flattened, not globally pooled, because *where* along the distance axis
an event sits matters (an adhesion at contact vs a rupture far from it). ``embed`` gives the
representation ``[B, embedding_dim]``; ``forward`` the class logits ``[B, num_classes]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class CurveCNN(nn.Module):
    """Args:
        in_channels: 1 (force) or 2 (force and its derivative).
        length: samples per curve; must be divisible by ``2 ** blocks``.
        channels: width of each convolution block, e.g. ``(16, 32, 32, 64)``.
        kernel_size: odd convolution width.
        embedding_dim: width of the embedding.
        num_classes: width of the classifier head.
        dropout: before the head.
    """

    def __init__(self, in_channels: int = 2, length: int = 256,
                 channels: tuple[int, ...] = (16, 32, 32, 64), kernel_size: int = 7,
                 embedding_dim: int = 64, num_classes: int = 4, dropout: float = 0.1):
        super().__init__()
        if length % (2 ** len(channels)):
            raise ValueError(f"length {length} must be divisible by 2**{len(channels)}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd; got {kernel_size}")
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            layers += [nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                       nn.BatchNorm1d(c_out), nn.ReLU(inplace=True), nn.MaxPool1d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = c_in * (length // 2 ** len(channels))
        self.project = nn.Sequential(nn.Linear(flat, embedding_dim))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(embedding_dim, num_classes))
        self.embedding_dim = embedding_dim
        self.in_channels = in_channels

    def embed(self, curves: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> ``[B, embedding_dim]``."""
        return self.project(self.features(curves))

    def forward(self, curves: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> logits ``[B, num_classes]``."""
        return self.head(self.embed(curves))


@dataclass(frozen=True)
class CurveCNNParams:
    """The architecture settings of :class:`CurveCNN` (``in_channels``, ``length`` and
    ``num_classes`` come from the data, see :meth:`config`)."""

    channels: tuple[int, ...] = (16, 32, 32, 64)
    kernel_size: int = 7
    embedding_dim: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of widths >= 1; got "
                             f"{list(self.channels)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1; got {self.kernel_size}")
        if self.embedding_dim < 1 or not 0 <= self.dropout < 1:
            raise ValueError("embedding_dim must be >= 1 and dropout in [0, 1)")

    def config(self, *, in_channels: int, length: int, num_classes: int) -> dict[str, Any]:
        """The registry config of ``curve_cnn`` for this data."""
        return {"in_channels": in_channels, "length": length, "channels": list(self.channels),
                "kernel_size": self.kernel_size, "embedding_dim": self.embedding_dim,
                "num_classes": num_classes, "dropout": self.dropout}
