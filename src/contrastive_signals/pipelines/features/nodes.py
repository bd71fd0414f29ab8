"""Image feature nodes: normalisation and optional spatial-filter channels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from contrastive_signals.config import from_params
from contrastive_signals.signal.image_filters import SPATIAL_FILTERS, add_filter_channels, normalize


@dataclass(frozen=True)
class ImageFeatureParams:
    mean: float = 0.5
    std: float = 0.5
    filters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.std <= 0:
            raise ValueError(f"std must be > 0, got {self.std}")
        unknown = [f for f in self.filters if f not in SPATIAL_FILTERS]
        if unknown:
            raise ValueError(f"filters: unknown {unknown}; choose from {sorted(SPATIAL_FILTERS)}")


def build_image_features(
    splits: dict[str, dict[str, torch.Tensor]], params: dict[str, Any]
) -> dict[str, dict[str, torch.Tensor]]:
    """Normalise every split's images ``[N, 1, H, W]`` and stack the chosen filters as
    channels, giving ``[N, 1 + len(filters), H, W]``; labels pass through."""
    config = from_params(ImageFeatureParams, params, path="features")
    features = {}
    for part, data in splits.items():
        images = normalize(data["images"], mean=config.mean, std=config.std)
        if config.filters:
            images = add_filter_channels(images, filters=list(config.filters))
        features[part] = {"images": images.contiguous(), "labels": data["labels"].clone()}
    return features
