"""Ingestion nodes: validate raw digit images and split them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from contrastive_signals.config import from_params
from contrastive_signals.data.digits import NUM_CLASSES
from contrastive_signals.data.splits import stratified_split_indices
from contrastive_signals.data.validation import MalformedDataError, validate_labelled_images


@dataclass(frozen=True)
class SplitParams:
    val_fraction: float = 0.1
    test_fraction: float = 0.25
    seed: int = 42
    max_samples: int | None = None

    def __post_init__(self) -> None:
        if self.max_samples is not None and self.max_samples < 10 * NUM_CLASSES:
            raise ValueError(f"max_samples must be null or >= {10 * NUM_CLASSES}")


def split_digit_images(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """Validate ``raw`` (images ``[N, 1, 28, 28]``, labels ``[N]``) and split it, stratified and
    seeded, into ``{"train"|"val"|"test": {"images", "labels"}}``."""
    split = from_params(SplitParams, params.get("split"), path="ingestion.split")
    name = f"digit images (source '{raw.get('source', '?')}')"
    images, labels = raw["images"], raw["labels"]
    validate_labelled_images(images, labels, num_classes=NUM_CLASSES, name=name)
    if tuple(images.shape[1:]) != (1, 28, 28):
        raise MalformedDataError(f"{name}: expected images of shape [N, 1, 28, 28], got {tuple(images.shape)}")
    if split.max_samples is not None and split.max_samples < len(labels):
        keep = stratified_split_indices(labels.numpy(), val_fraction=0.0,
                                        test_fraction=split.max_samples / len(labels),
                                        seed=split.seed)["test"]
        images, labels = images[keep], labels[keep]
    indices = stratified_split_indices(labels.numpy(), val_fraction=split.val_fraction,
                                       test_fraction=split.test_fraction, seed=split.seed)
    return {
        part: {"images": images[idx].clone(), "labels": labels[idx].clone()}
        for part, idx in indices.items()
    }


def summarise_splits(splits: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Per-split sizes and class counts, for the report and kedro-viz previews."""
    return {
        part: {
            "size": int(len(data["labels"])),
            "class_counts": torch.bincount(data["labels"], minlength=NUM_CLASSES).tolist(),
        }
        for part, data in splits.items()
    }
