"""Typed parameters of the ``denoising`` pipeline (``conf/base/parameters_denoising.yml``),
composed of the blocks that live beside the data, models, methods and the TV baseline;
checked by :func:`check_params` in the first node, before any training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.config import from_params, require_at_least
from contrastive_signals.data.sparse_view_ct import (
    BUILTIN_DATASETS,
    DataParams,
    NoiseParams,
    check_dataset_name,
)
from contrastive_signals.methods.hvae import HVAELossParams
from contrastive_signals.metrics.denoising import TVParams
from contrastive_signals.models.hvae import HVAEModelParams
from contrastive_signals.models.unet import UNetModelParams
from contrastive_signals.signal.radon import check_geometry
from contrastive_signals.training.autocast import resolve_cpu_bf16
from contrastive_signals.training.fit import FitConfig


@dataclass(frozen=True)
class TrainingParams:
    """How one denoiser trains: images per step, CPU threads, the CPU bf16 policy, the fit."""

    batch_size: int = 32    # >= 2: full random batches, the HVAE's triplets
    num_threads: int | None = 1
    # bf16 autocast and channels-last images when training on the CPU: true, false, or auto
    # (only where oneDNN has bf16 kernels: emulated bf16 is ~11x slower than float32)
    cpu_bf16: bool | str = "auto"
    # float32 training on the CPU with channels-last tensors (faster oneDNN convolutions;
    # implied by bf16)
    cpu_channels_last: bool = False
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=6, learning_rate=2e-3))

    def __post_init__(self) -> None:
        resolve_cpu_bf16(self.cpu_bf16)
        require_at_least(self, ("batch_size",), 2)
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")


@dataclass(frozen=True)
class HVAEParams(TrainingParams):
    model: HVAEModelParams = field(default_factory=HVAEModelParams)
    loss: HVAELossParams = field(default_factory=HVAELossParams)


@dataclass(frozen=True)
class UNetParams(TrainingParams):
    model: UNetModelParams = field(default_factory=UNetModelParams)


@dataclass(frozen=True)
class EvaluationParams:
    seed: int = 7                  # draws the swap donors
    figure_images: int = 4         # rows of each figure
    figure_views: int = 30
    figure_datasets: tuple[str, ...] = BUILTIN_DATASETS

    def __post_init__(self) -> None:
        if self.figure_images < 1:
            raise ValueError(f"figure_images must be >= 1, got {self.figure_images}")
        for name in self.figure_datasets:
            check_dataset_name(name)


@dataclass(frozen=True)
class DenoisingParams:
    """Everything under ``denoising:``."""

    data: DataParams = field(default_factory=DataParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    hvae: HVAEParams = field(default_factory=HVAEParams)
    unet: UNetParams = field(default_factory=UNetParams)
    tv: TVParams = field(default_factory=TVParams)
    evaluation: EvaluationParams = field(default_factory=EvaluationParams)

    def __post_init__(self) -> None:
        size = self.data.image_size
        for name in ("views", "train_views"):
            for v in getattr(self.noise, name):
                try:
                    check_geometry(size, v)
                except ValueError as error:
                    raise ValueError(f"noise.{name}: {error}") from None
        if self.evaluation.figure_views not in self.noise.views:
            raise ValueError(f"evaluation.figure_views ({self.evaluation.figure_views}) must be "
                             f"one of noise.views {self.noise.views}")
        if self.evaluation.figure_images > self.data.test_size:
            raise ValueError("evaluation.figure_images must be <= data.test_size")
        if size % 2**self.unet.model.depth:
            raise ValueError(f"data.image_size ({size}) must be divisible by 2**unet.model.depth")
        for key in ("hvae", "unet"):
            if getattr(self, key).batch_size > self.data.train_size:
                raise ValueError(f"{key}.batch_size must be <= data.train_size")


def check_params(params: dict[str, Any]) -> DenoisingParams:
    """``denoising`` parameters -> :class:`DenoisingParams`, or a ``ParameterError`` naming the
    parameter path."""
    return from_params(DenoisingParams, params, path="denoising")
