"""``hvae_split``: the hierarchical VAE whose latents a triplet loss splits into a signal and a
noise part, trained on clean images and their sparse-view versions (docs/denoising.md).

The method owns no head (the registry's ``hvae``, output ``split_latent``, is the whole
model); its state is the KL warm-up, stepped by fit after every optimiser step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from contrastive_signals.config import require_at_least
from contrastive_signals.losses.elbo import (
    LIKELIHOODS,
    derangement,
    group_derangement,
    kl_warmup,
    negative_elbo,
    signal_noise_triplet_losses,
    swap_consistency_loss,
)
from contrastive_signals.methods.base import Requirements
from contrastive_signals.methods.regression import PairedImageMethod
from contrastive_signals.models.hvae import HierarchicalVAE, cross_swap_codes
from contrastive_signals.training.autocast import CpuBf16Forward
from contrastive_signals.training.fit import BatchesFn
from contrastive_signals.training.ranks import local_forward, local_forward_rows


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
    # the share of a batch's pairs that each swap term decodes per step (a random subset; 1: all)
    swap_fraction: float = 1.0

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
        if not 0 < self.swap_fraction <= 1:
            raise ValueError(f"swap_fraction must lie in (0, 1], got {self.swap_fraction}")


def random_share(rows: Tensor, donors: Tensor, fraction: float, generator: torch.Generator
                 ) -> tuple[Tensor, Tensor]:
    """A random ``fraction`` of the pairs ``(rows [K], donors [K])`` (at least one, in their
    order) -> ``(rows [k], donors [k])``; all of them, with no draw, when ``fraction`` is 1."""
    if fraction >= 1 or rows.numel() == 0:
        return rows, donors
    count = max(1, round(fraction * rows.numel()))
    keep = torch.randperm(rows.numel(), generator=generator)[:count].sort().values
    return rows[keep], donors[keep]


def hvae_batch_loss(net: HierarchicalVAE, clean: Tensor, noisy: Tensor, views: Tensor,
                    generator: torch.Generator, *, loss: HVAELossParams, beta: float,
                    forward: CpuBf16Forward) -> Tensor:
    """The HVAE's training loss (scalar) on clean images ``[B, 1, N, N]`` and their noisy
    versions ``[B, 1, N, N]`` (``views`` ``[B]``: the view count of each, as any label):
    negative ELBO of both (``beta`` already warmed up), the signal and noise triplets at each
    latent level, and, when their weights are > 0, the swap terms:

    - removal (``loss.swap_weight``): signal parts of noisy image ``i`` + noise parts of
      another clean image of the batch, decoded, against clean image ``i``;
    - injection (``loss.inject_weight``): signal parts of clean image ``i`` + noise parts of
      another noisy image at the same view count, decoded, against noisy image ``i``.

    Each swap term decodes a random ``loss.swap_fraction`` of its pairs (an unbiased estimate
    of the term at a fraction of its cost: the two swap decodes are ~30 % of a step).

    ``forward`` wraps the model calls (the losses stay float32). Data-parallel: every network
    pass (the ELBO's and each swap decode) runs on this rank's shard of its rows and is
    gathered with gradient, so that every rank computes the one-process loss on the global
    batch (training/ranks.py); the sampling noise is the one process's draws, sharded.
    """
    batch = clean.shape[0]
    both = torch.cat([clean, noisy])
    noise = net.latent_noise(both.shape[0], generator)  # before any other draw, as in one process

    def elbo_terms(images: Tensor, z_global: Tensor, z_spatial: Tensor
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = forward(net, images, None, {"global": z_global, "spatial": z_spatial})
        return (out.reconstruction.float(), out.kl(), out.posteriors["spatial"].mean,
                out.posteriors["global"].mean)

    reconstruction, kl, spatial, global_ = local_forward(
        elbo_terms, both, noise["global"], noise["spatial"])
    total = negative_elbo(reconstruction, both, kl, std=loss.likelihood_std, beta=beta,
                          likelihood=loss.likelihood)
    negatives = derangement(batch, generator)
    codes = {"spatial": spatial, "global": global_}
    for signal, noise_part in net.split(codes).values():
        signal_loss, noise_loss = signal_noise_triplet_losses(
            signal, noise_part, negatives, signal_margin=loss.signal_margin,
            noise_margin=loss.noise_margin, normalize=loss.normalize_codes)
        total = total + (loss.signal_weight * signal_loss
                         + loss.noise_weight * noise_loss) / len(codes)

    def decode(swapped: dict[str, Tensor]) -> Tensor:
        return local_forward_rows(
            lambda s, g: forward(net.decode, {"spatial": s, "global": g}).float(),
            swapped["spatial"], swapped["global"])

    # Posterior means, not samples: the test-time swaps (swap_decode) decode means, so these
    # terms train the very maps that remove and inject the noise. Donors are drawn only when a
    # term is on, so that weights of 0 train exactly as before.
    nll = functools.partial(swap_consistency_loss, std=loss.likelihood_std,
                            likelihood=loss.likelihood)
    if loss.swap_weight > 0:
        # a random other clean image, never the image's own clean version (whose noise parts
        # would make this the own decode of the clean image)
        rows, donors = random_share(torch.arange(batch), derangement(batch, generator),
                                    loss.swap_fraction, generator)
        removed = decode(cross_swap_codes(net, codes, batch + rows, donors))
        total = total + loss.swap_weight * nll(removed, clean[rows])
    if loss.inject_weight > 0:
        # as at test time, the donor has the same view count (another image's streaks)
        rows, donors = random_share(*group_derangement(views.cpu(), generator),
                                    loss.swap_fraction, generator)
        if rows.numel():
            injected = decode(cross_swap_codes(net, codes, rows, batch + donors))
            total = total + loss.inject_weight * nll(injected, noisy[rows])
    return total


class HVAESplit(PairedImageMethod):
    """The negative ELBO (KL warm-up) on clean and noisy images, the signal and noise triplets
    at both latent levels and the swap-consistency terms (:func:`hvae_batch_loss`).

    State: ``step``, the optimiser steps taken so far (advanced by :meth:`on_step_end`), and
    ``warmup_steps`` (fixed by :meth:`batches` from the length of the fit); ``beta`` is
    ``params.beta`` times the linear warm-up factor at ``step``.
    """

    name = "hvae_split"
    requires = Requirements(modalities=("image",), outputs=("split_latent",))

    def __init__(self, params: HVAELossParams, *, forward: CpuBf16Forward | None = None
                 ) -> None:
        super().__init__(forward=forward)
        self.params = params
        self.step = 0
        self.warmup_steps = 0

    @property
    def beta(self) -> float:
        return self.params.beta * kl_warmup(self.step, warmup_steps=self.warmup_steps)

    def batches(self, train: dict[str, Any], *, batch_size: int, epochs: int) -> BatchesFn:
        """The pairs' batches; the warm-up lasts ``kl_warmup_fraction`` of the fit's
        ``epochs`` x steps per epoch."""
        self.warmup_steps = int(self.params.kl_warmup_fraction * epochs
                                * self.steps_per_epoch(train, batch_size))
        return super().batches(train, batch_size=batch_size, epochs=epochs)

    def loss(self, model: HierarchicalVAE, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        clean, noisy, views = batch
        return hvae_batch_loss(model, clean, noisy, views, generator, loss=self.params,
                               beta=self.beta, forward=self.forward)

    def on_step_end(self, model: nn.Module, step: int) -> None:
        self.step = step + 1

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.warmup_steps = int(state["step"]), int(state["warmup_steps"])
