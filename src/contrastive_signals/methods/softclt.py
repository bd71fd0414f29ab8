"""SoftCLT on TS2Vec (Lee et al., ICLR 2024): TS2Vec's crops, encoder, draws and budget, with
the soft hierarchical loss of :mod:`~contrastive_signals.losses.soft_contrastive`.

The instance assignments come from the distances (Euclidean, or between Fourier magnitudes)
between the raw (uncropped) series of each batch, mapped to ``[0, 1]`` with the range of the distances over the training set
(computed once, when the batches are made); the temporal ones from the distance in time. With
``tau_instance = tau_temporal = inf`` the method trains exactly TS2Vec's network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from contrastive_signals.losses.soft_contrastive import (
    distance_range,
    instance_soft_weights,
    soft_hierarchical_contrastive_loss,
)
from contrastive_signals.methods.ts2vec import Ts2VecMethod, Ts2VecParams

DISTANCES = ("euclidean", "spectrum", "dtw")
"""How the soft instance assignments compare two raw series: ``euclidean`` on the series,
``spectrum`` on the magnitudes of their Fourier transforms (per channel; blind to circular
shifts, a cheap stand-in for the shift tolerance of DTW), ``dtw``: dynamic time warping with
a full window (aeon's, multivariate: the squared differences summed over channels), square
root taken so that it is on the scale of ``euclidean`` (SoftCLT's choice for UCR/UEA)."""

MAX_RANGE_SERIES = {"euclidean": 4096, "spectrum": 4096, "dtw": 64}
"""The distance range is taken over at most this many training series (evenly spaced); DTW
costs ``T^2`` per pair, so its range comes from fewer series (2,016 pairs)."""


@dataclass(frozen=True)
class SoftCltParams(Ts2VecParams):
    """TS2Vec's ``alpha`` / ``temporal_unit`` plus SoftCLT's sharpness of the instance
    (``tau_instance``, on distances normalised to [0, 1]) and temporal (``tau_temporal``, per
    step at the finest scale) assignments (``None``: hard, TS2Vec's), and ``max_weight``, the
    largest instance weight a different series gets (SoftCLT's alpha); ``distance``: one of
    :data:`DISTANCES`."""

    tau_instance: float | None = 20.0
    tau_temporal: float | None = None
    max_weight: float = 0.5
    distance: str = "euclidean"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("tau_instance", "tau_temporal"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0 (null: hard), got {value}")
        if not 0 <= self.max_weight <= 1:
            raise ValueError(f"max_weight must lie in [0, 1], got {self.max_weight}")
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got '{self.distance}'")


def series_distances(x: Tensor, distance: str = "euclidean") -> Tensor:
    """``[N, N]`` distances (:data:`DISTANCES`) between the series of ``x`` ``[N, T, C]``
    (padding counts as 0)."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got '{distance}'")
    x = x.double()
    if distance == "dtw":
        from aeon.distances import dtw_pairwise_distance  # numba: imported when used

        squared = dtw_pairwise_distance(x.transpose(1, 2).contiguous().numpy())
        return torch.from_numpy(squared).clamp(min=0).sqrt()
    if distance == "spectrum":
        x = torch.fft.rfft(x, dim=1).abs()  # [N, T // 2 + 1, C]
    flat = x.flatten(1)
    return torch.cdist(flat, flat)


def training_distance_range(x: Tensor, distance: str = "euclidean") -> tuple[float, float]:
    """The off-diagonal range of the distances between the series of ``x`` ``[N, T, C]``
    (at most :data:`MAX_RANGE_SERIES` of them for ``distance``, evenly spaced)."""
    cap = MAX_RANGE_SERIES.get(distance, len(x))  # an unknown distance: series_distances raises
    if len(x) > cap:
        x = x[torch.linspace(0, len(x) - 1, cap).long()]
    return distance_range(series_distances(x, distance))


class SoftCltMethod(Ts2VecMethod):
    """TS2Vec with SoftCLT's soft assignments; batches are TS2Vec's ``(x, mask)``."""

    def __init__(self, params: SoftCltParams, *, seed: int):
        super().__init__(params, seed=seed)
        self._scale: tuple[float, float] | None = None

    def batches(self, x: Tensor, mask: Tensor, *, batch_size: int
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, Tensor]]]:
        """TS2Vec's batches; first the training set's distance range."""
        if self.params.tau_instance is not None:
            self._scale = training_distance_range(torch.where(mask.unsqueeze(-1), x, 0.0),
                                                  self.params.distance)
        return super().batches(x, mask, batch_size=batch_size)

    def instance_weights(self, x: Tensor, mask: Tensor) -> Tensor | None:
        """``[B, B]`` soft assignments between the batch's series ``x`` ``[B, T, C]``;
        ``None`` when hard."""
        if self.params.tau_instance is None:
            return None
        if self._scale is None:
            raise RuntimeError("SoftCltMethod.batches sets the distance range; call it first")
        observed = torch.where(mask.unsqueeze(-1), x, 0.0)
        return instance_soft_weights(series_distances(observed, self.params.distance),
                                     self.params.tau_instance,
                                     max_weight=self.params.max_weight, scale=self._scale)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        """SoftCLT's loss of the two crops' overlap (TS2Vec's draws; ``generator`` unused)."""
        x, mask = batch
        weights = self.instance_weights(x, mask)
        z1, z2 = self.overlap_views(model, x, mask)
        loss = soft_hierarchical_contrastive_loss(
            z1, z2, instance_weights=None if weights is None else weights.to(z1.device),
            tau_temporal=math.inf if self.params.tau_temporal is None
            else self.params.tau_temporal, alpha=self.params.alpha,
            temporal_unit=self.params.temporal_unit)
        return self.with_decorrelation(loss, z1, z2)
