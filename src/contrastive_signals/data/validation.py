"""Checks that turn malformed inputs into errors that name the dataset and the problem."""

from __future__ import annotations

import torch


class MalformedDataError(ValueError):
    """Raised when a dataset's content breaks the contract the pipeline relies on."""


def validate_labelled_images(
    images: torch.Tensor, labels: torch.Tensor, *, num_classes: int, name: str
) -> None:
    """Fail loudly unless ``images`` is finite ``[N, C, H, W]`` and ``labels`` ``[N]`` in range."""
    if images.ndim != 4:
        raise MalformedDataError(
            f"{name}: images must have shape [N, C, H, W], got {tuple(images.shape)}"
        )
    if labels.ndim != 1:
        raise MalformedDataError(f"{name}: labels must have shape [N], got {tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise MalformedDataError(
            f"{name}: {images.shape[0]} images but {labels.shape[0]} labels (lengths must match)"
        )
    if images.shape[0] == 0:
        raise MalformedDataError(f"{name}: the dataset is empty")
    non_finite = (~torch.isfinite(images)).sum().item()
    if non_finite:
        raise MalformedDataError(f"{name}: images contain {non_finite} NaN or infinite values")
    if labels.dtype.is_floating_point:
        raise MalformedDataError(f"{name}: labels must be integers, got {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise MalformedDataError(
            f"{name}: labels must lie in [0, {num_classes - 1}], found values in [{low}, {high}]"
        )
