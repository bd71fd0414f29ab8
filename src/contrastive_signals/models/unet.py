"""Residual U-Net in the style of FBPConvNet (Jin et al., 2017): the network sees the FBP
image and predicts the correction, ``output = input + unet(input)``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn


def _double_conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def check_unet_config(*, base_channels: int, depth: int) -> None:
    """Raise ``ValueError`` when a :class:`ResidualUNet` argument is out of range."""
    if base_channels < 1 or depth < 1:
        raise ValueError(f"base_channels and depth must be >= 1, got {base_channels}, {depth}")


@dataclass(frozen=True)
class UNetModelParams:
    """:class:`ResidualUNet`'s arguments."""

    base_channels: int = 16
    depth: int = 3

    def __post_init__(self) -> None:
        check_unet_config(**self.config())  # the model's own checks, under this path

    def config(self) -> dict[str, Any]:
        """The model's keyword arguments (a bundle's ``config``)."""
        return asdict(self)


class ResidualUNet(nn.Module):
    """U-Net with ``depth`` poolings, channels doubling from ``base_channels``, skip
    concatenations and a global residual connection.

    Input and output: ``[B, 1, N, N]`` with ``N`` divisible by ``2 ** depth``.
    """

    def __init__(self, *, base_channels: int = 32, depth: int = 3) -> None:
        super().__init__()
        check_unet_config(base_channels=base_channels, depth=depth)
        self.depth = depth
        widths = [base_channels * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(1, widths[0])]
                                  + [_double_conv(widths[k], widths[k + 1]) for k in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2)
                                 for k in reversed(range(depth))])
        self.merge = nn.ModuleList([_double_conv(2 * widths[k], widths[k])
                                    for k in reversed(range(depth))])
        self.out = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.out.weight)  # start as the identity: output = FBP
        nn.init.zeros_(self.out.bias)

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be [B, 1, N, N], got {tuple(images.shape)}")
        if images.shape[-1] % 2**self.depth or images.shape[-2] % 2**self.depth:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not divisible by "
                             f"2**depth = {2**self.depth}")
        skips, h = [], images
        for k, block in enumerate(self.down):
            h = block(h if k == 0 else nn.functional.max_pool2d(h, 2))
            skips.append(h)
        skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return images + self.out(h)


@torch.no_grad()
def apply_in_batches(model: nn.Module, images: Tensor, *, batch_size: int = 256) -> Tensor:
    """Run ``model`` in eval mode over ``images`` ``[B, 1, N, N]`` on its device -> CPU output."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(images[s:s + batch_size].to(device)).cpu()
           for s in range(0, images.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out)
