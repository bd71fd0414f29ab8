"""The sparse-view CT denoising data: clean images of a named data set split into
train/val/test, and their FBP reconstructions from a few views (the noisy versions).

Data sets: ``ellipses`` (random-ellipse phantoms), ``digits`` (scikit-learn's 8x8 digits),
``skimage`` (crops of scikit-image's sample images) and ``folder:<name>``, a user's images
(read by the catalog from ``data/01_raw/images/<name>/`` and passed in as
``{name: {file name: [H, W] array}}``). Randomness comes from an explicit
``numpy.random.Generator`` seeded by :class:`DataParams`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from contrastive_signals.data.ct_phantoms import (
    SKIMAGE_SAMPLES,
    EllipseSpec,
    check_image_stack,
    digit_phantoms,
    ellipse_phantoms,
    fit_to_circle,
    sample_image_patches,
    skimage_sample_images,
)
from contrastive_signals.data.digits import embedded_digits
from contrastive_signals.signal.radon import SparseViewCT

BUILTIN_DATASETS = ("ellipses", "digits", "skimage")
FOLDER_PREFIX = "folder:"
FIGURE_SEED_OFFSET = 10_000  # held-out figure images are drawn apart from the training data


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


def clean_images(data: DataParams, name: str, count: int, folders: dict[str, Any],
                 rng: np.random.Generator) -> np.ndarray:
    """``count`` clean images ``[count, N, N]`` in [0, 1] of data set ``name`` (a folder: all of
    its images, in file-name order)."""
    size = data.image_size
    if name == "ellipses":
        return ellipse_phantoms(count, size=size, spec=data.ellipses, rng=rng)
    if name == "digits":
        digits, _ = embedded_digits(image_size=8)
        pick = rng.permutation(digits.shape[0])[:count]
        return digit_phantoms(digits[pick, 0], size=size)
    if name == "skimage":
        images = skimage_sample_images(data.sample_images)
        return sample_image_patches(images, count, size=size, patch=data.patch_size, rng=rng)
    folder = name[len(FOLDER_PREFIX):]
    source = f"data/01_raw/images/{folder}/"
    if folder not in folders:
        raise ValueError(f"{source}: no such image folder (found: {sorted(folders)})")
    images = [folders[folder][key] for key in sorted(folders[folder])]
    if not images:
        raise ValueError(f"{source}: the folder holds no PNG/JPEG/TIFF images")
    check_image_stack(images, source=source)
    return fit_to_circle(np.stack(images), size=size)


def clean_image_splits(data: DataParams, folders: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The clean train/val/test images ``[M, N, N]`` in [0, 1] of ``data.dataset``.

    A user folder is split in file-name order after a seeded shuffle: test and validation
    first, the rest for training (it must hold more than ``test_size + val_size`` images).
    """
    rng = np.random.default_rng(data.seed)
    if not data.dataset.startswith(FOLDER_PREFIX):
        sizes = {"train": data.train_size, "val": data.val_size, "test": data.test_size}
        return {part: torch.from_numpy(clean_images(data, data.dataset, count, folders, rng))
                for part, count in sizes.items()}
    images = clean_images(data, data.dataset, 0, folders, rng)
    needed = data.val_size + data.test_size + 2
    if images.shape[0] < needed:
        raise ValueError(f"data/01_raw/images/{data.dataset[len(FOLDER_PREFIX):]}/ holds "
                         f"{images.shape[0]} images; need at least {needed} "
                         "(val_size + test_size + 2)")
    images = images[rng.permutation(images.shape[0])]
    test, val = images[:data.test_size], images[data.test_size:needed - 2]
    return {"train": torch.from_numpy(images[needed - 2:]), "val": torch.from_numpy(val),
            "test": torch.from_numpy(test)}


def held_out_images(data: DataParams, names: Sequence[str], count: int,
                    folders: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``count`` clean images ``[count, N, N]`` of every data set in ``names``, seeded apart
    from the training data (``data.seed + FIGURE_SEED_OFFSET``, one stream in that order)."""
    rng = np.random.default_rng(data.seed + FIGURE_SEED_OFFSET)
    return {name: torch.from_numpy(clean_images(data, name, count, folders, rng)[:count])
            for name in names}


def sparse_view_pairs(images: dict[str, torch.Tensor], *, size: int, views: Sequence[int],
                      train_views: Sequence[int], device: torch.device | str
                      ) -> dict[str, Any]:
    """FBP reconstructions of every clean image from each number of views, made by the
    batched operators on ``device``.

    Args:
        images: ``{part: [M, N, N]}`` clean images (``N = size``).

    Returns:
        ``{"views": [V...], "train_views": [V...], part: {"clean": [M, N, N], "noisy":
        {V: [M, N, N]}}}``; the train part has ``train_views``, the others ``views``.
    """
    for part, stack in images.items():
        if stack.ndim != 3 or stack.shape[1:] != (size, size):
            raise ValueError(f"{part} images must be [M, {size}, {size}], got "
                             f"{tuple(stack.shape)}")
        if not torch.isfinite(stack).all():
            raise ValueError(f"{part} images hold non-finite values")
    out: dict[str, Any] = {"views": list(views), "train_views": list(train_views)}
    for part, stack in images.items():
        noisy = {v: SparseViewCT(size, v, device=device).sparse_view(stack.to(device)).cpu()
                 for v in (train_views if part == "train" else views)}
        out[part] = {"clean": stack.clone(), "noisy": noisy}
    return out
