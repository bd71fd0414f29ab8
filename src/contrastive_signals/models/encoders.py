"""Encoders and heads for 28x28 digit images.

Every encoder maps images ``[B, C, 28, 28]`` to embeddings ``[B, embedding_dim]`` and exposes
``embedding_dim`` so heads and probes can be sized without running it.
"""

from __future__ import annotations

import torch
from torch import nn


class DigitCNN(nn.Module):
    """The classic small MNIST CNN: conv 16 -> conv 32 (ReLU, 2x2 max-pool each) -> fc 128 -> fc 64.

    Args:
        in_channels: image channels (1, or more when spatial filters are stacked as channels).
        embedding_dim: width of the last fully connected layer (the embedding).
        batch_norm: add BatchNorm after each convolution (helps contrastive training).
    """

    def __init__(self, in_channels: int = 1, embedding_dim: int = 64, batch_norm: bool = True):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size=5, padding=2)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            return nn.Sequential(*layers)

        self.features = nn.Sequential(block(in_channels, 16), block(16, 32))
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, embedding_dim),
        )
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, 28, 28]`` -> ``[B, embedding_dim]``."""
        return self.fc(self.features(images))


class TripletMLP(nn.Module):
    """The classic MNIST triplet network: MLP 784 -> 256 -> 64 -> 10 on flattened pixels."""

    def __init__(self, in_channels: int = 1, hidden_dims: tuple[int, ...] = (256, 64),
                 embedding_dim: int = 10, image_size: int = 28):
        super().__init__()
        dims = [in_channels * image_size * image_size, *hidden_dims]
        layers: list[nn.Module] = [nn.Flatten()]
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], embedding_dim))
        self.net = nn.Sequential(*layers)
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, embedding_dim]``."""
        return self.net(images)


class SupervisedCNN(nn.Module):
    """The classic tiny supervised baseline: two blocks of conv 3x3 (4 channels), BatchNorm,
    ReLU and 2x2 max-pool, then a linear layer to the classes.

    ``embed`` returns the flattened features ``[B, 4*7*7]`` so the baseline is probed like
    every other encoder; ``forward`` returns logits ``[B, num_classes]``.
    """

    def __init__(self, in_channels: int = 1, channels: int = 4, num_classes: int = 10):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(block(in_channels, channels), block(channels, channels),
                                      nn.Flatten())
        self.classifier = nn.Linear(channels * 7 * 7, num_classes)
        self.embedding_dim = channels * 7 * 7

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, 28, 28]`` -> ``[B, channels*49]``."""
        return self.features(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, 28, 28]`` -> logits ``[B, num_classes]``."""
        return self.classifier(self.embed(images))
