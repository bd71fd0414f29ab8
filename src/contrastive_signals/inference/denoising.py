"""Denoising: the HVAE's and the U-Net's reconstructions of new sparse-view CT images.

A new input is either a sparse-view image (the filtered back-projection of few views, what
the denoisers were trained on) or a sinogram ``[V, N]``, back-projected first with the
pipeline's own operator (:class:`~contrastive_signals.signal.radon.SparseViewCT`). The
denoisers then run as the evaluation runs them (:func:`~contrastive_signals.models.unet.
apply_in_batches`; :func:`~contrastive_signals.models.hvae.swap_decode` with clean training
donors drawn as :func:`~contrastive_signals.models.hvae.swap_donors` draws them), outputs
clipped to [0, 1] as the evaluation scores them.

The *denoising inference bundle* is ``{"task": "denoising", "hvae": model bundle, "unet":
model bundle, "image_size": N, "donors": [P, N, N] float32 clean training images (the
evaluation's donor pool), "donor_seed": int, "views": [V...], "train_views": [V...]}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from contrastive_signals.inference.bundles import InputError, image_stack, require_task
from contrastive_signals.metrics.image_quality import clip_unit
from contrastive_signals.models.hvae import swap_decode
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.models.unet import apply_in_batches
from contrastive_signals.signal.radon import SparseViewCT, check_geometry

#: What a request holds: sparse-view images ``[M, N, N]`` or sinograms ``[M, V, N]``.
INPUT_KINDS = ("image", "sinogram")


def denoising_bundle(hvae: dict[str, Any], unet: dict[str, Any], train_clean: torch.Tensor, *,
                     donor_pool: int, donor_seed: int, views: list[int],
                     train_views: list[int]) -> dict[str, Any]:
    """The bundle from the two trained denoisers and the clean training images ``[M, N, N]``
    (the first ``donor_pool`` are the evaluation's swap donors)."""
    donors = torch.as_tensor(train_clean)[:donor_pool].float().contiguous()
    return {"task": "denoising", "hvae": hvae, "unet": unet,
            "image_size": int(donors.shape[-1]), "donors": donors, "donor_seed": int(donor_seed),
            "views": [int(v) for v in views], "train_views": [int(v) for v in train_views]}


class Denoisers:
    """The two networks of a bundle, built once."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        require_task(bundle, "denoising")
        self.bundle = bundle
        self.hvae = from_bundle(bundle["hvae"], outputs=("split_latent",))
        self.unet: nn.Module = from_bundle(bundle["unet"], outputs=("image",))


def _stack(array: Any, source: str, what: str) -> np.ndarray:
    array = image_stack(array, source=source, what=what)
    if array.ndim != 3 or len(array) == 0:
        raise InputError(f"{source}: expected {what} of shape [N1, N2] or [M, N1, N2], got "
                         f"{list(np.asarray(array).shape)}")
    if not np.isfinite(array).all():
        raise InputError(f"{source}: {what} hold NaN or infinite values")
    return array.astype(np.float32)


def sparse_view_images(bundle: dict[str, Any], array: Any, *, kind: str = "image",
                       source: str = "request") -> torch.Tensor:
    """A request -> sparse-view images ``[M, N, N]`` float32: images ``[N, N]`` / ``[M, N, N]``
    as given, sinograms ``[V, N]`` / ``[M, V, N]`` (``2 <= V <= N`` views over [0, 180)
    degrees) back-projected by the pipeline's FBP.

    Raises:
        InputError: naming ``source`` for another image size or detector width, a view count
            outside [2, N], non-numbers or non-finite values, an unknown ``kind``.
    """
    size = bundle["image_size"]
    if kind not in INPUT_KINDS:
        raise InputError(f"{source}: input kind must be one of {INPUT_KINDS}, got {kind!r}")
    stack = _stack(array, source, "images" if kind == "image" else "sinograms")
    if kind == "image":
        if stack.shape[1:] != (size, size):
            raise InputError(f"{source}: images of {stack.shape[1]}x{stack.shape[2]} pixels; "
                             f"the denoisers were trained on {size}x{size}")
        return torch.from_numpy(stack)
    views, width = stack.shape[1:]
    try:
        if width != size:
            raise ValueError(f"{width} detector bins, the images are {size} wide")
        check_geometry(size, int(views))
    except ValueError as error:
        raise InputError(f"{source}: sinograms must be [V, {size}] with 2 <= V <= {size} "
                         f"views ({error})") from None
    return SparseViewCT(size, int(views)).fbp(torch.from_numpy(stack))


def denoise(denoisers: Denoisers, images: torch.Tensor, *, donor_seed: int | None = None
            ) -> dict[str, np.ndarray]:
    """The U-Net's and the HVAE's reconstructions of sparse-view images ``[M, N, N]``.

    The HVAE decodes each image's signal parts with the noise parts of a clean training image
    (noise removal by swap), donors drawn uniformly from the bundle's pool by a generator
    seeded with ``donor_seed`` (default: the evaluation's seed), as the evaluation draws its
    first view count's donors.

    Returns:
        ``{"sparse_view": [M, N, N] (the input), "unet": [M, N, N], "hvae": [M, N, N],
        "donor_index": [M] int64}``, images float32 in [0, 1] except the input.
    """
    bundle = denoisers.bundle
    seed = bundle["donor_seed"] if donor_seed is None else int(donor_seed)
    pool = bundle["donors"]
    index = torch.randint(0, len(pool), (len(images),), generator=torch.Generator().manual_seed(seed))
    noisy = images[:, None]
    unet = apply_in_batches(denoisers.unet, noisy)[:, 0]
    hvae = swap_decode(denoisers.hvae, noisy, pool[index][:, None])[:, 0]
    return {"sparse_view": images.numpy().astype(np.float32),
            "unet": clip_unit(unet).numpy().astype(np.float32),
            "hvae": clip_unit(hvae).numpy().astype(np.float32),
            "donor_index": index.numpy().astype(np.int64)}


def example_images(bundle: dict[str, Any]) -> np.ndarray:
    """A valid request ``[1, N, N]`` float32: a donor seen through the smallest training
    view count (a real sparse-view image)."""
    views = min(bundle["train_views"])
    return SparseViewCT(bundle["image_size"], views).sparse_view(bundle["donors"][:1]).numpy()
