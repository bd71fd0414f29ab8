"""Image-to-image regression (the residual U-Net of the denoising): the model maps a noisy
image to its clean version under the mean squared error.

:class:`PairedImageMethod` is what every method trained on sparse-view pairs shares (this one
and :class:`~contrastive_signals.methods.hvae.HVAESplit`). A *pairs part* is
``{"clean": [M, N, N], "noisy": {views: [M, N, N]}}``: clean images and their noisy versions
at each number of CT views (:func:`~contrastive_signals.data.sparse_view_ct.sparse_view_pairs`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from contrastive_signals.methods.base import Requirements
from contrastive_signals.training.autocast import CpuBf16Forward
from contrastive_signals.training.batches import noisy_version_batches
from contrastive_signals.training.fit import BatchesFn
from contrastive_signals.training.ranks import local_forward


class PairedImageMethod:
    """A method trained on ``(clean [b, 1, N, N], noisy [b, 1, N, N], views [b])`` batches
    (``views``: the index of each noisy image's view count among the sorted training views).
    It owns no head: :meth:`build` and :meth:`export` return the model itself (channels-last
    under an active CPU bf16 ``forward`` policy, which the loss applies to its model calls).
    No state by default."""

    name = "paired_image"
    requires = Requirements(modalities=("image",), outputs=("image", "split_latent"))
    # the U-Net's and the HVAE's losses reach every parameter at every step (no heads left
    # out): DDP skips its search for unused ones (training/ranks.py)
    uses_every_parameter = True

    def __init__(self, *, forward: CpuBf16Forward | None = None) -> None:
        self.forward = forward if forward is not None else CpuBf16Forward()

    def build(self, model: nn.Module) -> nn.Module:
        return self.forward.prepare(model)

    @staticmethod
    def steps_per_epoch(train: dict[str, Any], batch_size: int) -> int:
        """Full batches of ``batch_size`` clean images in the pairs part ``train``."""
        return train["clean"].shape[0] // batch_size

    def batches(self, train: dict[str, Any], *, batch_size: int, epochs: int) -> BatchesFn:
        """``(epoch, generator) -> batches`` over the pairs part ``train``, every noisy image at
        a view count drawn per image (:func:`noisy_version_batches`). ``epochs``: the length of
        the fit, for methods with schedules."""
        clean = train["clean"]
        noisy = torch.stack([train["noisy"][v] for v in sorted(train["noisy"])])  # [V, M, N, N]
        return lambda epoch, generator: noisy_version_batches(
            clean, noisy, batch_size=batch_size, generator=generator)

    def on_step_end(self, model: nn.Module, step: int) -> None:
        return None

    def on_epoch_end(self, model: nn.Module, epoch: int) -> dict[str, float]:
        return {}

    def export(self, model: nn.Module) -> nn.Module:
        return model


class ImageRegression(PairedImageMethod):
    """``mean((model(noisy) - clean)^2)`` over the pixels of a batch (scalar), the model's
    output in float32 (image in, image out: the U-Net)."""

    name = "image_regression"
    requires = Requirements(modalities=("image",), outputs=("image",))

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        clean, noisy, _ = batch
        denoised = local_forward(lambda images: self.forward(model, images), noisy)
        return (denoised.float() - clean).square().mean()
