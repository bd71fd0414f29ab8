"""Classical spatial image filters for batches ``[B, C, H, W]``.

Each filter is one depthwise ``F.conv2d`` (``groups=C``) over the whole batch, never a loop
over images. Borders use replicate padding (``scipy.ndimage`` mode ``"nearest"``), so an
averaging filter does not darken the edges and a flat image has a zero Laplacian everywhere.
Functions return new tensors and never modify their input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SPATIAL_FILTERS",
    "add_filter_channels",
    "box_filter",
    "denormalize",
    "laplacian",
    "laplacian_sharpen",
    "normalize",
]

# 4-neighbour discrete Laplacian, the sum of second differences along rows and columns
# (what scipy.ndimage.laplace computes).
_LAPLACIAN_KERNEL = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def _check_images(images: Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got dtype {images.dtype}")


def _depthwise(images: Tensor, kernel: Tensor) -> Tensor:
    """Correlate every channel of ``images [B, C, H, W]`` with ``kernel [k, k]`` (k odd)."""
    channels = images.shape[1]
    half = kernel.shape[-1] // 2
    weight = kernel.to(device=images.device, dtype=images.dtype).expand(channels, 1, -1, -1)
    padded = F.pad(images, (half, half, half, half), mode="replicate")
    return F.conv2d(padded, weight, groups=channels)


def box_filter(images: Tensor, *, size: int = 3) -> Tensor:
    """Mean over a ``size x size`` window (replicate padding at the borders).

    Args:
        images: ``[B, C, H, W]`` floating point.
        size: odd window side.

    Returns:
        ``[B, C, H, W]``; equals ``scipy.ndimage.uniform_filter(mode="nearest")`` per image.
    """
    _check_images(images)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size!r}")
    kernel = torch.full((size, size), 1.0 / (size * size), dtype=torch.float64)
    return _depthwise(images, kernel)


def laplacian(images: Tensor) -> Tensor:
    """3x3 Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (replicate padding).

    Returns:
        ``[B, C, H, W]``; equals ``scipy.ndimage.laplace(mode="nearest")`` per image.
    """
    _check_images(images)
    return _depthwise(images, torch.tensor(_LAPLACIAN_KERNEL, dtype=torch.float64))


def laplacian_sharpen(images: Tensor, *, amount: float = 1.0) -> Tensor:
    """Unsharp-style sharpening ``images - amount * laplacian(images)``.

    Subtracting the Laplacian raises a pixel above its neighbours' mean, steepening edges.

    Returns:
        ``[B, C, H, W]``.
    """
    _check_images(images)
    amount = float(amount)
    if not amount >= 0.0:
        raise ValueError(f"amount must be non-negative, got {amount!r}")
    return images - amount * laplacian(images)


def _channel_stats(
    images: Tensor, name: str, value: float | Sequence[float], *, positive: bool
) -> Tensor:
    """``value`` (a scalar or one per channel) as a ``[1, C, 1, 1]`` tensor on the images' device."""
    channels = images.shape[1]
    stats = torch.as_tensor(value, dtype=torch.float64).flatten()
    if stats.numel() not in (1, channels):
        raise ValueError(
            f"{name} must be a number or have one value per channel ({channels}), "
            f"got {stats.numel()} values"
        )
    if positive and not bool((stats > 0).all()):
        raise ValueError(f"{name} must be positive, got {value!r}")
    if not bool(torch.isfinite(stats).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return stats.to(device=images.device, dtype=images.dtype).view(1, -1, 1, 1)


def normalize(
    images: Tensor, *, mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5
) -> Tensor:
    """``(images - mean) / std`` with scalars or one value per channel.

    The defaults map [0, 1] to [-1, 1], as the classic MNIST recipes do.

    Returns:
        ``[B, C, H, W]``.
    """
    _check_images(images)
    mean_t = _channel_stats(images, "mean", mean, positive=False)
    std_t = _channel_stats(images, "std", std, positive=True)
    return (images - mean_t) / std_t


def denormalize(
    images: Tensor, *, mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5
) -> Tensor:
    """Inverse of :func:`normalize`: ``images * std + mean``.

    Returns:
        ``[B, C, H, W]``.
    """
    _check_images(images)
    mean_t = _channel_stats(images, "mean", mean, positive=False)
    std_t = _channel_stats(images, "std", std, positive=True)
    return images * std_t + mean_t


SPATIAL_FILTERS: dict[str, Callable[[Tensor], Tensor]] = {
    "box": box_filter,
    "laplacian": laplacian,
    "sharpen": laplacian_sharpen,
}


def add_filter_channels(images: Tensor, *, filters: Sequence[str]) -> Tensor:
    """Stack the images and each filtered version of them along the channel axis.

    Args:
        images: ``[B, C, H, W]`` floating point.
        filters: names from :data:`SPATIAL_FILTERS`, applied with their default settings.

    Returns:
        ``[B, C * (1 + len(filters)), H, W]``: channels ``[0, C)`` are the input, channels
        ``[C * (i + 1), C * (i + 2))`` are ``filters[i]``.
    """
    _check_images(images)
    if isinstance(filters, str):
        raise ValueError(f"filters must be a list of names, got the string {filters!r}")
    unknown = [name for name in filters if name not in SPATIAL_FILTERS]
    if unknown:
        raise ValueError(f"unknown filter(s) {unknown}; valid names are {sorted(SPATIAL_FILTERS)}")
    return torch.cat([images, *(SPATIAL_FILTERS[name](images) for name in filters)], dim=1)


def image_features(images: Tensor, *, mean: float | Sequence[float] = 0.5,
                   std: float | Sequence[float] = 0.5, filters: Sequence[str] = ()) -> Tensor:
    """The digits' feature step: :func:`normalize`, then the ``filters`` stacked as channels
    (:func:`add_filter_channels`); training and inference both call it.

    Args:
        images: ``[B, C, H, W]`` in [0, 1].

    Returns:
        ``[B, C * (1 + len(filters)), H, W]``, contiguous.
    """
    out = normalize(images, mean=mean, std=std)
    if filters:
        out = add_filter_channels(out, filters=list(filters))
    return out.contiguous()
