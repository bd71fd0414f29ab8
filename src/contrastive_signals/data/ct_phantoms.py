"""Clean images for sparse-view CT denoising: random-ellipse phantoms, digits, patches of
scikit-image's sample images, and users' own images, all as ``[M, N, N]`` float32 in [0, 1]
and zero outside the reconstruction circle (the scanner's field of view).

Everything here is pure: randomness comes from an explicit ``numpy.random.Generator``;
reading image files is the catalog's job (``io/image_folder_dataset.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from contrastive_signals.signal.radon import circle_mask

SKIMAGE_SAMPLES = ("shepp_logan_phantom", "camera", "moon", "brick", "grass", "coins")


@dataclass(frozen=True)
class EllipseSpec:
    """Random-ellipse phantom statistics, in units of the image half-width (the field of view
    is the unit disc). Each ellipse adds ``intensity`` inside it; the sum is clipped to
    [0, 1]."""

    min_ellipses: int = 3
    max_ellipses: int = 8
    min_axis: float = 0.08
    max_axis: float = 0.5
    min_intensity: float = -0.3
    max_intensity: float = 0.8
    max_centre_radius: float = 0.55

    def __post_init__(self) -> None:
        if not 1 <= self.min_ellipses <= self.max_ellipses:
            raise ValueError("need 1 <= min_ellipses <= max_ellipses, got "
                             f"{self.min_ellipses}, {self.max_ellipses}")
        if not 0 < self.min_axis <= self.max_axis <= 1:
            raise ValueError(f"need 0 < min_axis <= max_axis <= 1, got {self.min_axis}, "
                             f"{self.max_axis}")
        if not self.min_intensity <= self.max_intensity:
            raise ValueError("need min_intensity <= max_intensity")
        if not 0 <= self.max_centre_radius < 1:
            raise ValueError(f"max_centre_radius must lie in [0, 1), got "
                             f"{self.max_centre_radius}")


def ellipse_phantoms(count: int, *, size: int, spec: EllipseSpec,
                     rng: np.random.Generator) -> np.ndarray:
    """``count`` random-ellipse phantoms ``[count, size, size]`` float32 in [0, 1].

    The first ellipse is a large positive "body" so that every phantom has an object; the
    others add or remove intensity inside it.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    coords = (np.arange(size) - size // 2) / (size // 2)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    images = np.zeros((count, size, size))
    for k in range(count):
        n = int(rng.integers(spec.min_ellipses, spec.max_ellipses + 1))
        for e in range(n):
            if e == 0:
                a, b = rng.uniform(0.55, 0.9, size=2)
                cy, cx = rng.uniform(-0.05, 0.05, size=2)
                value = rng.uniform(0.3, 0.6)
            else:
                a, b = rng.uniform(spec.min_axis, spec.max_axis, size=2)
                r, phi = spec.max_centre_radius * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
                cy, cx = r * np.sin(phi), r * np.cos(phi)
                value = rng.uniform(spec.min_intensity, spec.max_intensity)
            theta = rng.uniform(0, np.pi)
            c, s = np.cos(theta), np.sin(theta)
            u = (xx - cx) * c + (yy - cy) * s
            w = -(xx - cx) * s + (yy - cy) * c
            images[k][(u / a) ** 2 + (w / b) ** 2 <= 1] += value
    images = np.clip(images, 0.0, 1.0) * circle_mask(size)
    return images.astype(np.float32)


def fit_to_circle(images: np.ndarray | torch.Tensor, *, size: int) -> np.ndarray:
    """Resize ``[M, H, W]`` images (bilinear, antialiased) so that the whole square fits
    inside the reconstruction circle of a ``size x size`` image, scale each to [0, 1] by the
    stack's range, and zero what falls outside the circle -> ``[M, size, size]`` float32."""
    stack = torch.as_tensor(np.asarray(images, dtype=np.float32))
    inner = int(np.floor(size / np.sqrt(2))) - 1  # side of the square inscribed in the circle
    small = F.interpolate(stack[:, None], size=(inner, inner), mode="bilinear",
                          align_corners=False, antialias=True)[:, 0]
    out = torch.zeros(stack.shape[0], size, size)
    offset = (size - inner) // 2
    out[:, offset:offset + inner, offset:offset + inner] = small
    low, high = out.amin(), out.amax()
    out = (out - low) / (high - low) if high > low else out * 0
    return (out.numpy() * circle_mask(size)).astype(np.float32)


def digit_phantoms(digits: np.ndarray | torch.Tensor, *, size: int) -> np.ndarray:
    """Digit images ``[M, h, w]`` (any size) placed in the field of view -> ``[M, N, N]``."""
    return fit_to_circle(digits, size=size)


def sample_image_patches(images: dict[str, np.ndarray], count: int, *, size: int,
                         patch: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random ``patch x patch`` crops, taken evenly from each grey-level image of
    ``images`` (name -> ``[H, W]`` in [0, 1]), each scaled to [0, 1] and fitted into the
    field of view of a ``size x size`` image -> ``[count, size, size]``."""
    if not images:
        raise ValueError("no sample images given")
    names = sorted(images)
    crops = []
    for k in range(count):
        image = images[names[k % len(names)]]
        if min(image.shape) < patch:
            raise ValueError(f"sample image '{names[k % len(names)]}' is {image.shape}, smaller "
                             f"than patch={patch}")
        r = int(rng.integers(0, image.shape[0] - patch + 1))
        c = int(rng.integers(0, image.shape[1] - patch + 1))
        crop = image[r:r + patch, c:c + patch].astype(np.float32)
        span = crop.max() - crop.min()
        crops.append((crop - crop.min()) / span if span > 0 else crop * 0)
    return np.concatenate([fit_to_circle(c[None], size=size) for c in crops])


def skimage_sample_images(names: Sequence[str] = SKIMAGE_SAMPLES) -> dict[str, np.ndarray]:
    """scikit-image's bundled sample images (no download) as grey ``[H, W]`` float in [0, 1]."""
    import skimage.data

    unknown = sorted(set(names) - set(SKIMAGE_SAMPLES))
    if unknown:
        raise ValueError(f"unknown sample image(s) {unknown}; choose from {SKIMAGE_SAMPLES}")
    out = {}
    for name in names:
        image = np.asarray(getattr(skimage.data, name)(), dtype=np.float64)
        out[name] = image / 255.0 if image.max() > 1.0 else image
    return out


def check_image_stack(images: Sequence[np.ndarray], *, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` and the offending image when the stack is empty,
    images differ in shape, are not 2-D (grey) or hold non-finite values."""
    if len(images) == 0:
        raise ValueError(f"{source}: no images")
    first = np.shape(images[0])
    for k, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"{source}: image {k} has shape {image.shape}; expected 2-D grey "
                             "images")
        if image.shape != first:
            raise ValueError(f"{source}: images of mixed sizes, image 0 is {first} but image "
                             f"{k} is {image.shape}")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{source}: image {k} holds non-finite values (NaN or inf)")
