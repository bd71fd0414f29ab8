"""Image generators for 28x28 single-channel images in [-1, 1]: a small U-Net noise predictor
(DDPM) and DCGAN-style generator and discriminator. Class conditioning is optional
everywhere; the U-Net's extra class index ``num_classes`` is the "no class" token of
classifier-free guidance."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of integer steps ``t`` ``[B]`` -> ``[B, dim]`` (``dim`` even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class _ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the step/class embedding as a per-channel shift."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """``x`` ``[B, c_in, H, W]``, ``emb`` ``[B, emb_dim]`` -> ``[B, c_out, H, W]``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SmallUNet(nn.Module):
    """A two-level U-Net (28 -> 14 -> 7) predicting the noise of ``x_t``.

    ``forward(x [B, 1, 28, 28], t [B], labels [B] | None) -> [B, 1, 28, 28]``; labels equal to
    ``num_classes`` (or ``None``) mean "unconditional".
    """

    def __init__(self, channels: int = 32, num_classes: int = 0, in_channels: int = 1):
        super().__init__()
        c, emb = channels, 4 * channels
        self.channels, self.num_classes = channels, num_classes
        self.time = nn.Sequential(nn.Linear(c, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.classes = nn.Embedding(num_classes + 1, emb) if num_classes else None
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down1 = _ResBlock(c, c, emb)
        self.down2 = _ResBlock(c, 2 * c, emb)
        self.mid = _ResBlock(2 * c, 2 * c, emb)
        self.up2 = _ResBlock(4 * c, c, emb)
        self.up1 = _ResBlock(2 * c, c, emb)
        self.out = nn.Sequential(nn.GroupNorm(min(8, c), c), nn.SiLU(),
                                 nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        emb = self.time(timestep_embedding(t, self.channels))
        if self.classes is not None:
            if labels is None:
                labels = torch.full_like(t, self.num_classes)
            emb = emb + self.classes(labels)
        h0 = self.down1(self.stem(x), emb)                         # [B, c, 28, 28]
        h1 = self.down2(F.avg_pool2d(h0, 2), emb)                  # [B, 2c, 14, 14]
        h = self.mid(F.avg_pool2d(h1, 2), emb)                     # [B, 2c, 7, 7]
        h = self.up2(torch.cat([F.interpolate(h, scale_factor=2), h1], 1), emb)
        h = self.up1(torch.cat([F.interpolate(h, scale_factor=2), h0], 1), emb)
        return self.out(h)


class DCGANGenerator(nn.Module):
    """``z [B, latent_dim]`` (+ ``labels [B]``) -> images ``[B, 1, 28, 28]`` in [-1, 1]:
    Linear to 7x7, two stride-2 transposed convolutions with BatchNorm, tanh."""

    def __init__(self, latent_dim: int = 64, channels: int = 64, num_classes: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes, c = latent_dim, num_classes, channels
        self.classes = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.fc = nn.Sequential(nn.Linear(latent_dim, 2 * c * 49), nn.BatchNorm1d(2 * c * 49),
                                nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.classes is not None:
            z = z * self.classes(labels)
        h = self.fc(z).view(len(z), -1, 7, 7)
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    """``x [B, 1, 28, 28]`` (+ ``labels``) -> logits ``[B]``: two stride-2 convolutions with
    LeakyReLU, a linear output and, when conditional, a projection term
    ``<embed(label), features>`` (Miyato & Koyama 2018). ``spectral``: spectral norm on
    every weight."""

    def __init__(self, channels: int = 64, num_classes: int = 0, spectral: bool = False):
        super().__init__()
        c = channels
        wrap = spectral_norm if spectral else (lambda module: module)
        self.features = nn.Sequential(
            wrap(nn.Conv2d(1, c, 4, 2, 1)), nn.LeakyReLU(0.2),
            wrap(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2), nn.Flatten())
        self.out = wrap(nn.Linear(2 * c * 49, 1))
        self.classes = wrap(nn.Embedding(num_classes, 2 * c * 49)) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x)
        logits = self.out(h).squeeze(1)
        if self.classes is not None:
            logits = logits + (self.classes(labels) * h).sum(1)
        return logits
