"""Scores of the sparse-view CT denoisers per number of views: FBP, TV, the U-Net and the
HVAE's swaps (figure names ``denoise.<method>.v<views>.<psnr|ssim>``, docs/denoising.md).

A *pairs part* is ``{"clean": [M, N, N], "noisy": {views: [M, N, N]}}``
(:func:`~contrastive_signals.data.sparse_view_ct.sparse_view_pairs`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from contrastive_signals.metrics.image_quality import clip_unit, image_scores, mean_psnr
from contrastive_signals.models.hvae import (
    HierarchicalVAE,
    decode_codes,
    encode_images,
    latent_part_effects,
    swap_decode,
    swap_donors,
    swap_noise,
)
from contrastive_signals.models.unet import apply_in_batches
from contrastive_signals.signal.tv import tv_denoise

Denoiser = Callable[[Tensor], Tensor]  # noisy [M, 1, N, N] -> denoised [M, 1, N, N]


@dataclass(frozen=True)
class TVParams:
    """TV (Chambolle) weights tried per view count; the best on the validation set is used."""

    weights: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16)

    def __post_init__(self) -> None:
        if not self.weights or min(self.weights) <= 0:
            raise ValueError(f"weights must be a non-empty list of positive numbers, got "
                             f"{self.weights}")


def mean_view_psnr(part: dict[str, Any], denoise: Denoiser) -> float:
    """Mean over the view counts of the pairs part of the PSNR of ``denoise``'s clipped output
    (the validation score while training)."""
    clean = part["clean"]
    scores = [mean_psnr(clip_unit(denoise(part["noisy"][v][:, None])[:, 0]), clean)
              for v in sorted(part["noisy"])]
    return float(np.mean(scores))


RowMap = Callable[..., Tensor]  # (fn, *inputs [R, ...]) -> fn(*inputs), maybe shared out


def _all_rows(fn: Callable[..., Tensor], *inputs: Tensor) -> Tensor:
    return fn(*inputs)


def swap_psnr(hvae: HierarchicalVAE, part: dict[str, Any], *, map_rows: RowMap = _all_rows
              ) -> float:
    """:func:`mean_view_psnr` of noise removal by swap, each image's noise parts from another
    clean image of the part (the previous one, cyclically): the HVAE's validation score.
    ``map_rows`` runs the decode on the images' rows: all here, or each data-parallel rank its
    share with every output gathered (``training.ranks.local_forward_rows``)."""
    donors = part["clean"].roll(1, dims=0)[:, None]
    return mean_view_psnr(part, lambda noisy: map_rows(
        lambda images, clean: swap_decode(hvae, images, clean), noisy, donors))


def denoiser_psnr(model: nn.Module, part: dict[str, Any], *, map_rows: RowMap = _all_rows
                  ) -> float:
    """:func:`mean_view_psnr` of an image-to-image ``model`` (the U-Net's validation score);
    ``map_rows`` as in :func:`swap_psnr`."""
    return mean_view_psnr(part, lambda noisy: map_rows(
        functools.partial(apply_in_batches, model), noisy))


def best_tv_weight(noisy: Tensor, clean: Tensor, weights: Sequence[float]) -> float:
    """The TV weight of ``weights`` whose denoising of ``noisy`` ``[M, N, N]`` scores the best
    PSNR against ``clean`` ``[M, N, N]`` (the first on ties)."""
    return max(weights, key=lambda w: mean_psnr(clip_unit(tv_denoise(noisy, weight=w)), clean))


def sparse_view_scores(pairs: dict[str, Any], *, hvae: HierarchicalVAE, unet: nn.Module,
                       views: Sequence[int], tv_weights: Sequence[float], donor_pool: int,
                       generator: torch.Generator) -> dict[str, float]:
    """PSNR/SSIM of every method on ``pairs["test"]`` for each number of ``views``:

    - ``fbp``: the sparse-view FBP itself; ``tv``: TV-Chambolle with the weight that scores best
      on ``pairs["val"]`` (reported as ``tv.v<V>.weight``); ``unet``: the residual U-Net;
    - ``hvae_swap``: the noisy image's signal parts decoded with the noise parts of a random
      clean training image (not chosen by quality); ``hvae_own``: its own code decoded;
    - ``hvae_inject``: a clean image's signal parts with the noise parts of a random noisy
      training image at the same view count, scored against the true noisy version of the
      clean image; ``clean_as_noisy``: the clean image itself scored against it.

    Donors come from the first ``donor_pool`` training images (:func:`swap_donors`, drawn
    from ``generator`` view count after view count). Denoised outputs are clipped to [0, 1];
    injected noise is not clipped.
    """
    train, val, test = pairs["train"], pairs["val"], pairs["test"]
    clean = test["clean"]
    metrics: dict[str, float] = {}

    def record(method: str, v: int, scores: dict[str, float]) -> None:
        for key, value in scores.items():
            metrics[f"denoise.{method}.v{v}.{key}"] = value

    for v in views:
        noisy = test["noisy"][v]
        record("fbp", v, image_scores(clip_unit(noisy), clean))
        weight = best_tv_weight(val["noisy"][v], val["clean"], tv_weights)
        metrics[f"denoise.tv.v{v}.weight"] = weight
        record("tv", v, image_scores(clip_unit(tv_denoise(noisy, weight=weight)), clean))
        outputs = {"unet": apply_in_batches(unet, noisy[:, None])[:, 0]}
        clean_donors, noisy_donors = swap_donors(train, v, clean.shape[0], pool=donor_pool,
                                                 generator=generator)
        codes = encode_images(hvae, noisy[:, None])  # shared by the swap and the own decode
        outputs["hvae_swap"] = decode_codes(
            hvae, swap_noise(hvae, codes, encode_images(hvae, clean_donors)))[:, 0]
        outputs["hvae_own"] = decode_codes(hvae, codes)[:, 0]
        for method, output in outputs.items():
            record(method, v, image_scores(clip_unit(output), clean))
        injected = swap_decode(hvae, clean[:, None], noisy_donors)[:, 0]
        record("hvae_inject", v, {"psnr": mean_psnr(injected, noisy)})
        record("clean_as_noisy", v, {"psnr": mean_psnr(clean, noisy)})
    return metrics


def streak_alignment(effects: dict[str, Tensor]) -> dict[str, float]:
    """How much each latent part's effect looks like the streaks: the cosine between each
    image's effect map and its streaks ``noisy - clean``, averaged over the images
    (``effects``: :func:`~contrastive_signals.models.hvae.latent_part_effects`). 1: the part
    reproduces the streak pattern; 0: unrelated to it."""
    streaks = effects["streaks"].flatten(1).double()
    return {name.replace(" ", "_") + "_cos": float(torch.nn.functional.cosine_similarity(
                effects[name].flatten(1).double(), streaks, dim=1).mean())
            for name in ("noise part", "signal part")}


def split_scores(part: dict[str, Any], hvae: HierarchicalVAE, views: Sequence[int]
                 ) -> dict[str, float]:
    """``denoise.split.v<V>.{noise,signal}_part_cos``: :func:`streak_alignment` of the test
    images at each view count: where the HVAE keeps the streaks (docs/denoising.md)."""
    clean = part["clean"][:, None]
    return {f"denoise.split.v{v}.{name}": value for v in views
            for name, value in streak_alignment(
                latent_part_effects(hvae, clean, part["noisy"][v][:, None])).items()}
