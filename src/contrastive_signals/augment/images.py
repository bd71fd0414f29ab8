"""Batched view-making augmentations for image batches (SimCLR on small digit images).

Every function takes ``images [B, C, H, W]`` (floating point, any device) and a keyword-only
CPU ``torch.Generator``. Random parameters are drawn on the CPU with that generator and only
then moved to ``images.device``, so a seed gives the same views on CPU and GPU. Functions
return a new tensor and never modify their input. Work is done for the whole batch at once
(one ``affine_grid`` + ``grid_sample`` for all geometry, one grouped convolution for blur).

Geometry is expressed in the normalised coordinates of ``F.affine_grid`` with
``align_corners=False``: ``x, y`` in ``[-1, 1]`` span the outer pixel *edges*, ``x`` to the
right and ``y`` down. A matrix ``theta [B, 2, 3]`` maps an output position to the input
position it samples from, ``src = theta @ [x_out, y_out, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ViewAugmentation",
    "apply_affine",
    "compose_affine",
    "crop_matrices",
    "from_params",
    "gaussian_blur",
    "gaussian_kernels",
    "gaussian_noise",
    "random_affine",
    "random_affine_matrices",
    "random_erasing",
    "rotation_shear_translation_matrices",
]


# ----------------------------------------------------------------------------- validation


def _check_images(images: Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got dtype {images.dtype}")


def _check_generator(generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    # Parameters come from the CPU stream so CPU and GPU runs of one seed agree.
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")


def _check_range(
    name: str, value: Any, *, low: float, high: float, open_low: bool = False
) -> tuple[float, float]:
    """``value`` as an ordered pair inside ``[low, high]`` (``(low, high]`` with open_low)."""
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    below = (first <= low) if open_low else (first < low)
    if below or second > high or first > second:
        bracket = "(" if open_low else "["
        raise ValueError(
            f"{name} must be an ordered pair inside {bracket}{low}, {high}], got {value!r}"
        )
    return first, second


def _check_number(
    name: str, value: Any, *, low: float, high: float = math.inf, open_high: bool = False
) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    above = (number >= high) if open_high else (number > high)
    if not number >= low or above:  # `not >=` also rejects NaN
        bracket = ")" if open_high else "]"
        raise ValueError(f"{name} must lie in [{low}, {high}{bracket}, got {value!r}")
    return number


def _check_probability(name: str, value: Any) -> float:
    return _check_number(name, value, low=0.0, high=1.0)


def _check_kernel_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {value!r}")
    return value


# ----------------------------------------------------------------------------- geometry


def crop_matrices(boxes: Tensor) -> Tensor:
    """Matrices that resize the crop ``boxes`` to the whole output (a resized crop).

    Args:
        boxes: ``[B, 4]`` crop boxes ``(x0, y0, x1, y1)`` in normalised coordinates, edges
            of the crop (``(-1, -1, 1, 1)`` is the whole image).

    Returns:
        ``[B, 2, 3]`` matrices mapping output coordinates into the crop.
    """
    x0, y0, x1, y1 = boxes.unbind(dim=-1)
    zero = torch.zeros_like(x0)
    row_x = torch.stack([(x1 - x0) / 2, zero, (x1 + x0) / 2], dim=-1)
    row_y = torch.stack([zero, (y1 - y0) / 2, (y1 + y0) / 2], dim=-1)
    return torch.stack([row_x, row_y], dim=-2)


def rotation_shear_translation_matrices(
    angle_deg: Tensor, shear_deg: Tensor, translate: Tensor, *, aspect: float = 1.0
) -> Tensor:
    """Sampling matrices of a rotation, x-shear and translation about the image centre.

    Follows torchvision's ``affine(img, angle, translate, scale=1, shear=[shear, 0])``: a
    positive angle turns the content clockwise, a positive translation moves it right/down.

    Args:
        angle_deg: ``[B]`` rotation angles in degrees.
        shear_deg: ``[B]`` shear angles along x in degrees.
        translate: ``[B, 2]`` translations ``(tx, ty)`` as fractions of width and height.
        aspect: width / height of the images, so rotations stay rigid in pixel space.

    Returns:
        ``[B, 2, 3]`` matrices mapping output coordinates to input coordinates.
    """
    rot = torch.deg2rad(angle_deg)
    tan_shear = torch.tan(torch.deg2rad(shear_deg))
    cos, sin = torch.cos(rot), torch.sin(rot)
    # Forward map in pixel space is R(rot) @ [[1, -tan], [0, 1]] (torchvision's RSS, sy=0);
    # its inverse is the sampling map. det == 1, so the inverse is the adjugate.
    a, b = cos, -cos * tan_shear - sin
    c, d = sin, -sin * tan_shear + cos
    # Pixel -> normalised is diag(2/W, 2/H); conjugating rescales the off-diagonals.
    inv_00, inv_01 = d, -b / aspect
    inv_10, inv_11 = -c * aspect, a
    # Translation by t (fraction of size) is 2 * t in normalised units; sample at inv(p - t).
    tx, ty = 2 * translate[..., 0], 2 * translate[..., 1]
    row_x = torch.stack([inv_00, inv_01, -(inv_00 * tx + inv_01 * ty)], dim=-1)
    row_y = torch.stack([inv_10, inv_11, -(inv_10 * tx + inv_11 * ty)], dim=-1)
    return torch.stack([row_x, row_y], dim=-2)


def compose_affine(outer: Tensor, inner: Tensor) -> Tensor:
    """Matrix of ``p -> outer(inner(p))`` for ``[B, 2, 3]`` sampling matrices.

    With sampling matrices the transform applied *last* to the image is the innermost one.
    """
    linear = outer[..., :2] @ inner[..., :2]
    shift = outer[..., :2] @ inner[..., 2:] + outer[..., 2:]
    return torch.cat([linear, shift], dim=-1)


def random_affine_matrices(
    batch_size: int,
    *,
    generator: torch.Generator,
    crop_scale: tuple[float, float] = (0.6, 1.0),
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    max_rotation_deg: float = 15.0,
    max_shear_deg: float = 10.0,
    max_translate: float = 0.1,
    aspect: float = 1.0,
) -> Tensor:
    """Per-sample random resized crop followed by a small rotation, shear and translation.

    The crop covers a fraction ``crop_scale`` of the image area with width/height ratio
    (in pixels) in ``crop_ratio`` (log-uniform), at a uniform position inside the image. A
    crop that would overflow the image is clipped to it, so its area can fall below the drawn
    one (torchvision instead redraws up to 10 times, then takes a centre crop). Angle, x-shear and translations are uniform in ``[-max, max]``. There is
    no flip: digits are not mirror-invariant.

    Args:
        batch_size: number of matrices B.
        generator: CPU generator; exactly one ``torch.rand(B, 8)`` draw is taken from it.
        aspect: width / height of the images the matrices are for.

    Returns:
        ``[B, 2, 3]`` float32 CPU sampling matrices for ``F.affine_grid(align_corners=False)``.
    """
    _check_generator(generator)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batch_size must be a non-negative integer, got {batch_size!r}")
    scale_lo, scale_hi = _check_range("crop_scale", crop_scale, low=0.0, high=1.0, open_low=True)
    ratio_lo, ratio_hi = _check_range(
        "crop_ratio", crop_ratio, low=0.0, high=math.inf, open_low=True
    )
    max_rotation_deg = _check_number("max_rotation_deg", max_rotation_deg, low=0.0, high=180.0)
    max_shear_deg = _check_number(
        "max_shear_deg", max_shear_deg, low=0.0, high=90.0, open_high=True
    )
    max_translate = _check_number("max_translate", max_translate, low=0.0, high=1.0)
    aspect = _check_number("aspect", aspect, low=0.0)
    if aspect == 0.0:
        raise ValueError("aspect must be positive, got 0.0")

    # One draw of fixed size, so the stream position never depends on the ranges.
    u = torch.rand(batch_size, 8, generator=generator)
    area = scale_lo + (scale_hi - scale_lo) * u[:, 0]
    log_ratio = math.log(ratio_lo) + (math.log(ratio_hi) - math.log(ratio_lo)) * u[:, 1]
    ratio = torch.exp(log_ratio)
    # Half-widths in normalised units equal the crop's fraction of the image size.
    half_w = torch.sqrt(area * ratio / aspect).clamp(max=1.0)
    half_h = torch.sqrt(area * aspect / ratio).clamp(max=1.0)
    center_x = (2 * u[:, 2] - 1) * (1 - half_w)
    center_y = (2 * u[:, 3] - 1) * (1 - half_h)
    boxes = torch.stack(
        [center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h], dim=-1
    )

    angle = (2 * u[:, 4] - 1) * max_rotation_deg
    shear = (2 * u[:, 5] - 1) * max_shear_deg
    translate = (2 * u[:, 6:8] - 1) * max_translate
    # Crop first, then rotate the crop: the crop matrix is the outer (applied-first) map.
    geometry = rotation_shear_translation_matrices(angle, shear, translate, aspect=aspect)
    return compose_affine(crop_matrices(boxes), geometry)


PADDING_MODES = ("zeros", "border", "reflection")


def apply_affine(images: Tensor, matrices: Tensor, *, padding_mode: str = "zeros") -> Tensor:
    """Resample every image with its own matrix (bilinear).

    ``"zeros"`` suits digit images in [0, 1], whose background is 0; ``"border"`` repeats
    the edge pixels, which keeps the background right after normalisation (where it is -1)
    and for filter channels.

    Args:
        images: ``[B, C, H, W]`` floating point.
        matrices: ``[B, 2, 3]`` sampling matrices (any device and float dtype).

    Returns:
        ``[B, C, H, W]``, same dtype and device as ``images``.
    """
    _check_images(images)
    if matrices.shape != (images.shape[0], 2, 3):
        raise ValueError(
            f"matrices must have shape {(images.shape[0], 2, 3)}, got {tuple(matrices.shape)}"
        )
    if images.shape[0] == 0:  # affine_grid rejects an empty batch
        return images.clone()
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got '{padding_mode}'")
    theta = matrices.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


def random_affine(
    images: Tensor,
    *,
    generator: torch.Generator,
    crop_scale: tuple[float, float] = (0.6, 1.0),
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    max_rotation_deg: float = 15.0,
    max_shear_deg: float = 10.0,
    max_translate: float = 0.1,
    padding_mode: str = "zeros",
) -> Tensor:
    """Random resized crop + rotation/shear/translation, one random matrix per sample.

    Args:
        images: ``[B, C, H, W]`` floating point, any device.
        generator: CPU generator (see :func:`random_affine_matrices`).

    Returns:
        ``[B, C, H, W]`` new tensor.
    """
    _check_images(images)
    batch, _, height, width = images.shape
    matrices = random_affine_matrices(
        batch,
        generator=generator,
        crop_scale=crop_scale,
        crop_ratio=crop_ratio,
        max_rotation_deg=max_rotation_deg,
        max_shear_deg=max_shear_deg,
        max_translate=max_translate,
        aspect=width / height,
    )
    return apply_affine(images, matrices, padding_mode=padding_mode)


# ----------------------------------------------------------------------------- photometric


def gaussian_noise(
    images: Tensor, *, std: float, generator: torch.Generator, p: float = 1.0
) -> Tensor:
    """Add ``N(0, std^2)`` pixel noise to each sample with probability ``p``.

    Draws ``rand(B)`` then ``randn(B, C, H, W)`` (float32, CPU) from ``generator``; nothing is
    drawn when ``std == 0`` or ``p == 0``.

    Returns:
        ``[B, C, H, W]`` new tensor.
    """
    _check_images(images)
    _check_generator(generator)
    std = _check_number("std", std, low=0.0)
    p = _check_probability("p", p)
    if std == 0.0 or p == 0.0:
        return images.clone()
    apply = torch.rand(images.shape[0], generator=generator) < p
    noise = torch.randn(tuple(images.shape), generator=generator)
    noise = noise * (std * apply.to(noise.dtype)).view(-1, 1, 1, 1)
    return images + noise.to(device=images.device, dtype=images.dtype)


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels, as torchvision's ``gaussian_blur`` builds them.

    Args:
        sigma: ``[B]`` positive standard deviations in pixels.
        kernel_size: odd number of taps k.

    Returns:
        ``[B, k]`` kernels summing to 1.
    """
    _check_kernel_size("kernel_size", kernel_size)
    half = kernel_size // 2
    x = torch.arange(-half, half + 1, dtype=sigma.dtype, device=sigma.device)
    pdf = torch.exp(-0.5 * (x / sigma.unsqueeze(-1)) ** 2)
    return pdf / pdf.sum(dim=-1, keepdim=True)


def _separable_blur(images: Tensor, kernels: Tensor) -> Tensor:
    """Blur sample b of ``images [B, C, H, W]`` with ``kernels[b] [k]`` along both axes.

    The batch is folded into channels so one grouped convolution serves every sample with
    its own kernel. Padding is ``reflect`` like torchvision's ``gaussian_blur``.
    """
    batch, channels, height, width = images.shape
    if batch == 0:  # conv2d rejects zero channels
        return images.clone()
    k = kernels.shape[-1]
    weights = kernels.repeat_interleave(channels, dim=0)  # [B*C, k], sample-major like reshape
    folded = images.reshape(1, batch * channels, height, width)
    folded = F.pad(folded, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    folded = F.conv2d(folded, weights.view(-1, 1, 1, k), groups=batch * channels)
    folded = F.conv2d(folded, weights.view(-1, 1, k, 1), groups=batch * channels)
    return folded.view(batch, channels, height, width)


def gaussian_blur(
    images: Tensor,
    *,
    sigma_range: tuple[float, float] = (0.1, 1.0),
    kernel_size: int = 3,
    p: float = 0.5,
    generator: torch.Generator,
) -> Tensor:
    """Gaussian blur with a per-sample sigma, applied to each sample with probability ``p``.

    Sigma is uniform in ``sigma_range``. The default 3 taps follow SimCLR's rule of a kernel
    about 10% of the image side (28 px). Draws ``rand(B, 2)`` from ``generator``.

    Args:
        images: ``[B, C, H, W]`` floating point with ``H, W > kernel_size // 2``.

    Returns:
        ``[B, C, H, W]`` new tensor.
    """
    _check_images(images)
    _check_generator(generator)
    sigma_lo, sigma_hi = _check_range(
        "sigma_range", sigma_range, low=0.0, high=math.inf, open_low=True
    )
    _check_kernel_size("kernel_size", kernel_size)
    p = _check_probability("p", p)
    if min(images.shape[-2:]) <= kernel_size // 2:
        raise ValueError(
            f"kernel_size {kernel_size} is too large for images of shape {tuple(images.shape)}"
        )

    u = torch.rand(images.shape[0], 2, generator=generator)
    apply = u[:, 0] < p
    # Kernels in float64 so float64 images get exact kernels; cast to the images' dtype below.
    sigma = sigma_lo + (sigma_hi - sigma_lo) * u[:, 1].double()
    kernels = gaussian_kernels(sigma, kernel_size).to(device=images.device, dtype=images.dtype)
    blurred = _separable_blur(images, kernels)
    return torch.where(apply.to(images.device).view(-1, 1, 1, 1), blurred, images)


def random_erasing(
    images: Tensor,
    *,
    scale: tuple[float, float] = (0.02, 0.2),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
    p: float = 0.5,
    generator: torch.Generator,
) -> Tensor:
    """Cutout: set one random rectangle per sample (all channels) to ``value``, with prob. ``p``.

    The rectangle covers a fraction ``scale`` of the area, with width/height ratio
    log-uniform in ``ratio``, rounded to whole pixels and clipped to the image. Draws
    ``rand(B, 5)`` from ``generator``.

    Returns:
        ``[B, C, H, W]`` new tensor.
    """
    _check_images(images)
    _check_generator(generator)
    scale_lo, scale_hi = _check_range("scale", scale, low=0.0, high=1.0)
    ratio_lo, ratio_hi = _check_range("ratio", ratio, low=0.0, high=math.inf, open_low=True)
    p = _check_probability("p", p)
    value = float(value)

    batch, _, height, width = images.shape
    u = torch.rand(batch, 5, generator=generator)
    apply = u[:, 0] < p
    area = (scale_lo + (scale_hi - scale_lo) * u[:, 1]) * height * width
    ratio_ = torch.exp(math.log(ratio_lo) + (math.log(ratio_hi) - math.log(ratio_lo)) * u[:, 2])
    rect_h = torch.sqrt(area / ratio_).round().clamp(0, height)
    rect_w = torch.sqrt(area * ratio_).round().clamp(0, width)
    top = torch.floor(u[:, 3] * (height - rect_h + 1)).clamp(max=height - rect_h)
    left = torch.floor(u[:, 4] * (width - rect_w + 1)).clamp(max=width - rect_w)

    # Rectangle masks for the whole batch from broadcast comparisons, no per-image loop.
    params = torch.stack([top, top + rect_h, left, left + rect_w], dim=-1).to(images.device)
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    inside = (
        (rows >= params[:, 0].view(-1, 1, 1))
        & (rows < params[:, 1].view(-1, 1, 1))
        & (cols >= params[:, 2].view(-1, 1, 1))
        & (cols < params[:, 3].view(-1, 1, 1))
    )
    mask = (inside & apply.to(images.device).view(-1, 1, 1)).unsqueeze(1)  # [B, 1, H, W]
    return images.masked_fill(mask, value)


# ----------------------------------------------------------------------------- composition


@dataclass(frozen=True)
class ViewAugmentation:
    """SimCLR view maker for digit images: affine -> blur -> noise (-> erasing if enabled).

    Ranges are ``(low, high)`` pairs; lists (as YAML gives them) are stored as tuples.
    Invalid settings raise ``ValueError`` naming the field, before any data is touched.
    """

    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    max_rotation_deg: float = 15.0
    max_shear_deg: float = 10.0
    max_translate: float = 0.1
    blur_sigma_range: tuple[float, float] = (0.1, 1.0)
    blur_kernel_size: int = 3
    blur_p: float = 0.5
    noise_std: float = 0.1
    noise_p: float = 0.5
    erase_p: float = 0.0
    erase_scale: tuple[float, float] = (0.02, 0.2)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        checked = {
            "crop_scale": _check_range(
                "crop_scale", self.crop_scale, low=0.0, high=1.0, open_low=True
            ),
            "crop_ratio": _check_range(
                "crop_ratio", self.crop_ratio, low=0.0, high=math.inf, open_low=True
            ),
            "max_rotation_deg": _check_number(
                "max_rotation_deg", self.max_rotation_deg, low=0.0, high=180.0
            ),
            "max_shear_deg": _check_number(
                "max_shear_deg", self.max_shear_deg, low=0.0, high=90.0, open_high=True
            ),
            "max_translate": _check_number("max_translate", self.max_translate, low=0.0, high=1.0),
            "blur_sigma_range": _check_range(
                "blur_sigma_range", self.blur_sigma_range, low=0.0, high=math.inf, open_low=True
            ),
            "blur_kernel_size": _check_kernel_size("blur_kernel_size", self.blur_kernel_size),
            "blur_p": _check_probability("blur_p", self.blur_p),
            "noise_std": _check_number("noise_std", self.noise_std, low=0.0),
            "noise_p": _check_probability("noise_p", self.noise_p),
            "erase_p": _check_probability("erase_p", self.erase_p),
            "erase_scale": _check_range("erase_scale", self.erase_scale, low=0.0, high=1.0),
            "erase_ratio": _check_range(
                "erase_ratio", self.erase_ratio, low=0.0, high=math.inf, open_low=True
            ),
        }
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got '{self.padding_mode}'")
        # Normalise lists to tuples and ints to floats so equal settings compare equal.
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ViewAugmentation:
        """Build from a parameters mapping (e.g. ``params:augment``); unknown keys are errors."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(f"unknown augmentation parameter(s) {unknown}; valid ones are {valid}")
        return cls(**params)

    def __call__(self, images: Tensor, *, generator: torch.Generator) -> Tensor:
        """One random view of each image: ``[B, C, H, W] -> [B, C, H, W]``."""
        views = random_affine(
            images,
            generator=generator,
            crop_scale=self.crop_scale,
            crop_ratio=self.crop_ratio,
            max_rotation_deg=self.max_rotation_deg,
            max_shear_deg=self.max_shear_deg,
            max_translate=self.max_translate,
            padding_mode=self.padding_mode,
        )
        views = gaussian_blur(
            views,
            sigma_range=self.blur_sigma_range,
            kernel_size=self.blur_kernel_size,
            p=self.blur_p,
            generator=generator,
        )
        views = gaussian_noise(views, std=self.noise_std, p=self.noise_p, generator=generator)
        if self.erase_p > 0.0:
            views = random_erasing(
                views,
                scale=self.erase_scale,
                ratio=self.erase_ratio,
                p=self.erase_p,
                generator=generator,
            )
        return views

    def two_views(self, images: Tensor, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two independent views ``([B, C, H, W], [B, C, H, W])`` drawn one after the other."""
        first = self(images, generator=generator)
        return first, self(images, generator=generator)


def from_params(params: Mapping[str, Any]) -> ViewAugmentation:
    """Module-level alias of :meth:`ViewAugmentation.from_params`."""
    return ViewAugmentation.from_params(params)
