"""Typed parameters of the ``denoising`` pipeline (``conf/base/parameters_denoising.yml``);
everything is checked by :func:`check_params` in the first node, before any training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contrastive_signals.config import from_params, require_at_least, require_bool
from contrastive_signals.data.ct_phantoms import SKIMAGE_SAMPLES, EllipseSpec
from contrastive_signals.losses.elbo import LIKELIHOODS
from contrastive_signals.models.hvae import HierarchicalVAE, check_hvae_config
from contrastive_signals.models.unet import ResidualUNet
from contrastive_signals.signal.radon import check_geometry
from contrastive_signals.training.fit import FitConfig

BUILTIN_DATASETS = ("ellipses", "digits", "skimage")
FOLDER_PREFIX = "folder:"


def check_dataset_name(name: str) -> None:
    if name in BUILTIN_DATASETS:
        return
    if not (name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX)):
        raise ValueError(f"dataset must be one of {BUILTIN_DATASETS} or 'folder:<name>' (images "
                         f"in data/01_raw/images/<name>/), got '{name}'")


@dataclass(frozen=True)
class DataParams:
    """Which clean images, how many, and their size."""

    dataset: str = "ellipses"
    image_size: int = 64
    train_size: int = 2000
    val_size: int = 100
    test_size: int = 200
    donor_pool: int = 200   # clean/noisy training images the swaps draw their donors from
    seed: int = 0
    ellipses: EllipseSpec = field(default_factory=EllipseSpec)
    patch_size: int = 128   # crops of scikit-image's sample images
    sample_images: tuple[str, ...] = SKIMAGE_SAMPLES

    def __post_init__(self) -> None:
        check_dataset_name(self.dataset)
        if self.image_size < 8 or self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (>= 8), got {self.image_size}")
        for name in ("train_size", "val_size", "test_size", "donor_pool"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if self.donor_pool > self.train_size:
            raise ValueError(f"donor_pool ({self.donor_pool}) must be <= train_size "
                             f"({self.train_size})")
        if self.patch_size < 8:
            raise ValueError(f"patch_size must be >= 8, got {self.patch_size}")
        unknown = sorted(set(self.sample_images) - set(SKIMAGE_SAMPLES))
        if unknown or not self.sample_images:
            raise ValueError(f"sample_images must be a non-empty subset of {SKIMAGE_SAMPLES}, "
                             f"unknown: {unknown}")


@dataclass(frozen=True)
class NoiseParams:
    """Sparse-view FBP: ``views`` are evaluated, ``train_views`` make the training pairs."""

    views: tuple[int, ...] = (18, 30, 60)
    train_views: tuple[int, ...] = (18, 30, 60)
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.views or not self.train_views:
            raise ValueError("views and train_views must be non-empty lists")


@dataclass(frozen=True)
class HVAEModelParams:
    channels: tuple[int, int, int] = (16, 32, 48)
    spatial_signal: int = 8
    spatial_noise: int = 4
    global_signal: int = 32
    global_noise: int = 16
    latent_stride: int = 4
    decoder_blocks: int = 1
    noise_channels: int = 0

    def __post_init__(self) -> None:
        check_hvae_config(**self.config())  # the model's own checks, under this path

    def build(self, image_size: int) -> HierarchicalVAE:
        return HierarchicalVAE(image_size=image_size, **self.config())

    def config(self) -> dict[str, Any]:
        return {"channels": tuple(self.channels), "spatial_signal": self.spatial_signal,
                "spatial_noise": self.spatial_noise, "global_signal": self.global_signal,
                "global_noise": self.global_noise, "latent_stride": self.latent_stride,
                "decoder_blocks": self.decoder_blocks, "noise_channels": self.noise_channels}


@dataclass(frozen=True)
class HVAELossParams:
    """Gaussian likelihood std, beta with linear warm-up over the first
    ``kl_warmup_fraction`` of the steps, the triplet terms (margins in RMS units) and the
    weights of the swap-consistency terms (0: off)."""

    likelihood: str = "gaussian"
    likelihood_std: float = 0.02
    beta: float = 1.0
    kl_warmup_fraction: float = 0.3
    signal_weight: float = 1.0
    noise_weight: float = 1.0
    signal_margin: float = 0.5
    noise_margin: float = 0.5
    normalize_codes: bool = False  # triplets on unit-length codes (margins in [0, 2])
    swap_weight: float = 0.0    # swap-consistency term (signal of noisy + noise of other clean)
    inject_weight: float = 0.0  # its reverse (signal of clean + noise of other noisy, same views)

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got "
                             f"'{self.likelihood}'")
        if not self.likelihood_std > 0:
            raise ValueError(f"likelihood_std must be > 0, got {self.likelihood_std}")
        if not 0 <= self.kl_warmup_fraction <= 1:
            raise ValueError(f"kl_warmup_fraction must lie in [0, 1], got "
                             f"{self.kl_warmup_fraction}")
        require_at_least(self, ("beta", "signal_weight", "noise_weight", "signal_margin",
                                "noise_margin", "swap_weight", "inject_weight"), 0)


@dataclass(frozen=True)
class HVAEParams:
    model: HVAEModelParams = field(default_factory=HVAEModelParams)
    loss: HVAELossParams = field(default_factory=HVAELossParams)
    batch_size: int = 32
    num_threads: int | None = 1
    cpu_bf16: bool = True   # bf16 autocast and channels-last images when training on the CPU
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=6, learning_rate=2e-3))

    def __post_init__(self) -> None:
        require_bool(self, ("cpu_bf16",))
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (triplets need other images), got "
                             f"{self.batch_size}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")


@dataclass(frozen=True)
class UNetModelParams:
    base_channels: int = 16
    depth: int = 3

    def config(self) -> dict[str, Any]:
        return {"base_channels": self.base_channels, "depth": self.depth}


@dataclass(frozen=True)
class UNetParams:
    model: UNetModelParams = field(default_factory=UNetModelParams)
    batch_size: int = 32
    num_threads: int | None = 1
    cpu_bf16: bool = True   # bf16 autocast and channels-last images when training on the CPU
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=6, learning_rate=2e-3))

    def __post_init__(self) -> None:
        require_bool(self, ("cpu_bf16",))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")


@dataclass(frozen=True)
class TVParams:
    """TV (Chambolle) weights tried per view count; the best on the validation set is used."""

    weights: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16)

    def __post_init__(self) -> None:
        if not self.weights or min(self.weights) <= 0:
            raise ValueError(f"weights must be a non-empty list of positive numbers, got "
                             f"{self.weights}")


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
        try:
            self.hvae.model.build(size)
            ResidualUNet(**self.unet.model.config())
        except ValueError as error:
            raise ValueError(f"model: {error}") from None


def check_params(params: dict[str, Any]) -> DenoisingParams:
    """``denoising`` parameters -> :class:`DenoisingParams`, or a ``ParameterError`` naming the
    parameter path."""
    return from_params(DenoisingParams, params, path="denoising")
