"""Feature nodes: image normalisation and spatial-filter channels (digits), and the
declarative signal feature steps applied to any signal dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from contrastive_signals.config import from_params
from contrastive_signals.signal.image_filters import SPATIAL_FILTERS, image_features
from contrastive_signals.signal.steps import apply_feature_steps_to_dataset, validate_feature_steps


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
        images = image_features(data["images"], mean=config.mean, std=config.std,
                                filters=config.filters)
        features[part] = {"images": images, "labels": data["labels"].clone()}
    return features


@dataclass(frozen=True)
class SignalFeatureParams:
    """One signal dataset's feature recipe (``signal_features.<dataset>`` in parameters).

    ``steps`` is the ordered list of ``{name: <step>, <arguments>}`` of
    :mod:`contrastive_signals.signal.steps`; ``signal_key`` names the dataset's signal arrays;
    ``sampling_rate`` is used only when the dataset does not carry its own.
    """

    steps: tuple[dict[str, Any], ...]
    signal_key: str = "signals"
    sampling_rate: float | None = None

    def __post_init__(self) -> None:
        validate_feature_steps(list(self.steps))
        if self.sampling_rate is not None and not self.sampling_rate > 0:
            raise ValueError(f"sampling_rate must be > 0, got {self.sampling_rate}")


def build_signal_features(data: dict[str, Any], params: dict[str, Any], *,
                          dataset: str) -> dict[str, Any]:
    """Apply the YAML step list of ``signal_features.<dataset>`` to every signal array of
    ``data`` in one batch (see :func:`apply_feature_steps_to_dataset`).

    Returns:
        ``data``'s structure with features in place of the signals, ``sampling_rate`` set
        to the rate after the steps and ``feature_steps`` recording the recipe.
    """
    path = f"signal_features.{dataset}"
    config = from_params(SignalFeatureParams, params, path=path)
    rate = data.get("sampling_rate", config.sampling_rate)
    if rate is None:
        raise ValueError(f"{path}: the dataset carries no sampling_rate; set "
                         f"{path}.sampling_rate in parameters")
    steps = [dict(step) for step in config.steps]
    features, rate_after = apply_feature_steps_to_dataset(
        data, steps, signal_key=config.signal_key, sampling_rate=float(rate))
    return {**features, "sampling_rate": rate_after, "feature_steps": steps}
