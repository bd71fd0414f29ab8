"""Digits: embeddings of new images and their nearest training neighbours.

The *digits inference bundle* is ``{"task": "digits", "encoder_name", "encoder": model
bundle, "features": {"mean", "std", "filters"}, "train_embeddings": [N, D] float32,
"train_labels": [N] int64, "train_images": [N, H, W] float32 in [0, 1], "k": int}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from contrastive_signals.inference.bundles import InputError, image_stack, require_task
from contrastive_signals.models.registry import embed, from_bundle
from contrastive_signals.signal.image_filters import denormalize, image_features


def digits_bundle(encoder_name: str, encoder: dict[str, Any], features: dict[str, Any],
                  train_features: torch.Tensor, train_embeddings: np.ndarray,
                  train_labels: np.ndarray, *, k: int = 5) -> dict[str, Any]:
    """The bundle from what the evaluation computed: ``train_features`` ``[N, C, H, W]`` (the
    feature step's output; channel 0 back to [0, 1] gives the pictures), the encoder's
    training embeddings ``[N, D]`` and labels ``[N]``."""
    config = {"mean": float(features.get("mean", 0.5)), "std": float(features.get("std", 0.5)),
              "filters": [str(f) for f in features.get("filters", ())]}
    images = denormalize(train_features[:, :1], mean=config["mean"], std=config["std"])[:, 0]
    return {"task": "digits", "encoder_name": encoder_name, "encoder": encoder,
            "features": config,
            "train_embeddings": torch.as_tensor(np.asarray(train_embeddings), dtype=torch.float32),
            "train_labels": torch.as_tensor(np.asarray(train_labels), dtype=torch.int64),
            "train_images": images.float().clamp(0, 1).contiguous(), "k": int(k)}


def image_shape(bundle: dict[str, Any]) -> tuple[int, int]:
    """``(H, W)`` of the images the encoder was trained on."""
    return tuple(int(n) for n in bundle["train_images"].shape[1:])


def check_digit_images(images: Any, shape: tuple[int, int], *, source: str = "request"
                       ) -> np.ndarray:
    """``images`` as ``[N, H, W]`` float32 in [0, 1]; ``[H, W]`` and ``[N, 1, H, W]`` are
    accepted too.

    Raises:
        InputError: naming ``source``, for another size, a non-numeric dtype, values outside
            [0, 1] or non-finite values.
    """
    array = image_stack(images, source=source)
    if array.ndim != 3 or tuple(array.shape[1:]) != tuple(shape) or len(array) == 0:
        raise InputError(f"{source}: expected images of shape [N, {shape[0]}, {shape[1]}] "
                         f"(N >= 1), got {list(np.asarray(images).shape)}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InputError(f"{source}: images hold NaN or infinite values")
    if array.min() < 0 or array.max() > 1:
        raise InputError(f"{source}: pixel values must lie in [0, 1] (divide 8-bit images by "
                         f"255), got [{array.min():.3g}, {array.max():.3g}]")
    return array


def predict_digits(bundle: dict[str, Any], images: np.ndarray, *, model: nn.Module | None = None,
                   source: str = "request") -> dict[str, np.ndarray]:
    """Embeddings and the ``k`` nearest training images (cosine distance, as the evaluation's
    kNN and retrieval) of new images.

    Args:
        images: ``[N, H, W]`` in [0, 1] (see :func:`check_digit_images`).
        model: the encoder built from the bundle (built here when None).

    Returns:
        ``{"embedding": [N, D] float32, "neighbour_index": [N, k] int64 (training rows),
        "neighbour_label": [N, k] int64, "neighbour_distance": [N, k] float32,
        "predicted_label": [N] int64 (majority of the neighbours, nearest first on ties)}``.
    """
    require_task(bundle, "digits")
    array = check_digit_images(images, image_shape(bundle), source=source)
    config = bundle["features"]
    features = image_features(torch.from_numpy(array)[:, None], mean=config["mean"],
                              std=config["std"], filters=config["filters"])
    model = model if model is not None else from_bundle(bundle["encoder"])
    with torch.no_grad():
        embeddings = embed(model, features)
    train = bundle["train_embeddings"]
    similarity = (nn.functional.normalize(embeddings, dim=1)
                  @ nn.functional.normalize(train, dim=1).T)
    k = min(int(bundle["k"]), len(train))
    top, index = similarity.topk(k, dim=1)
    labels = bundle["train_labels"][index]
    return {"embedding": embeddings.numpy().astype(np.float32),
            "neighbour_index": index.numpy().astype(np.int64),
            "neighbour_label": labels.numpy().astype(np.int64),
            "neighbour_distance": (1 - top).numpy().astype(np.float32),
            "predicted_label": majority_labels(labels.numpy())}


def majority_labels(labels: np.ndarray) -> np.ndarray:
    """``[N, k]`` neighbour labels (nearest first) -> ``[N]`` most frequent label; ties go to
    the label met first."""
    out = np.empty(len(labels), dtype=np.int64)
    for row, values in enumerate(labels):
        unique, first, counts = np.unique(values, return_index=True, return_counts=True)
        best = np.flatnonzero(counts == counts.max())
        out[row] = unique[best[np.argmin(first[best])]]
    return out
