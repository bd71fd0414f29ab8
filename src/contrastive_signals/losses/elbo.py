"""Negative ELBO of a Gaussian-likelihood VAE, and the triplet terms that split a latent into
a signal part and a noise part (for :class:`~contrastive_signals.models.hvae.HierarchicalVAE`).

Units: nats per pixel, so that the triplet weights do not depend on the image size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastive_signals.losses.triplet import triplet_margin_loss


def gaussian_nll(reconstruction: Tensor, target: Tensor, *, std: float) -> Tensor:
    """``-log N(target; reconstruction, std^2)`` up to its constant, summed over all but the
    batch dim -> ``[B]``: ``sum((target - reconstruction)^2) / (2 std^2)``."""
    if reconstruction.shape != target.shape:
        raise ValueError(f"reconstruction {tuple(reconstruction.shape)} and target "
                         f"{tuple(target.shape)} differ in shape")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return (reconstruction - target).square().flatten(1).sum(dim=1) / (2.0 * std**2)


def laplace_nll(reconstruction: Tensor, target: Tensor, *, scale: float) -> Tensor:
    """``-log Laplace(target; reconstruction, scale)`` up to its constant, summed over all but
    the batch dim -> ``[B]``: ``sum(|target - reconstruction|) / scale``."""
    if reconstruction.shape != target.shape:
        raise ValueError(f"reconstruction {tuple(reconstruction.shape)} and target "
                         f"{tuple(target.shape)} differ in shape")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return (reconstruction - target).abs().flatten(1).sum(dim=1) / scale


LIKELIHOODS = {"gaussian": lambda r, t, s: gaussian_nll(r, t, std=s),
               "laplace": lambda r, t, s: laplace_nll(r, t, scale=s)}


def negative_elbo(reconstruction: Tensor, target: Tensor, kl: Tensor, *, std: float,
                  beta: float, likelihood: str = "gaussian") -> Tensor:
    """Batch mean of ``(nll + beta * kl) / pixels`` (scalar); ``kl`` is ``[B]``. ``likelihood``:
    ``gaussian`` (``std`` its standard deviation) or ``laplace`` (``std`` its scale ``b``)."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got '{likelihood}'")
    pixels = target[0].numel()
    nll = LIKELIHOODS[likelihood](reconstruction.float(), target.float(), std)
    return ((nll + beta * kl) / pixels).mean()


def swap_consistency_loss(swapped: Tensor, clean: Tensor, *, std: float,
                          likelihood: str = "gaussian") -> Tensor:
    """Batch mean of ``nll(clean | swapped) / pixels`` (scalar), the likelihood of the main
    ELBO term without its KL. For noise removal ``swapped`` ``[B, 1, N, N]`` decodes the
    signal parts of noisy image ``i`` with the noise parts of another clean image and
    ``clean`` ``[B, 1, N, N]`` is image ``i``'s clean version: it asks the swap itself to remove
    the noise, so that the streaks cannot hide in the signal parts. (For noise injection the
    roles turn: the target is the true noisy image.)"""
    return negative_elbo(swapped, clean, torch.zeros(clean.shape[0], device=clean.device),
                         std=std, beta=0.0, likelihood=likelihood)


def kl_warmup(step: int, *, warmup_steps: int) -> float:
    """Linear KL warm-up factor in [0, 1]: ``min(1, step / warmup_steps)`` (1 when no
    warm-up)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def derangement(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation of ``range(n)`` without fixed points (a cyclic shift by a random
    offset in ``[1, n)`` of a random permutation) -> ``[n]``; ``n >= 2``."""
    if n < 2:
        raise ValueError(f"need at least 2 items for a derangement, got {n}")
    perm = torch.randperm(n, generator=generator)
    shift = int(torch.randint(1, n, (1,), generator=generator))
    out = torch.empty(n, dtype=torch.long)
    out[perm] = perm.roll(shift)
    return out


def group_derangement(groups: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """For items labelled ``groups`` ``[B]``: ``(rows, donors)``, each ``[K]``, pairing every
    item with another item of its own group (a :func:`derangement` within each group); items
    alone in their group are left out (``K <= B``)."""
    rows, donors = [], []
    for label in groups.unique(sorted=True):
        members = (groups == label).nonzero().flatten()
        if members.numel() < 2:
            continue
        rows.append(members)
        donors.append(members[derangement(members.numel(), generator)])
    if not rows:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty
    return torch.cat(rows), torch.cat(donors)


def split_triplets(batch: int, negatives: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor],
                                                            tuple[Tensor, Tensor, Tensor]]:
    """Index triplets over the stacked codes ``[clean_0..clean_{B-1}, noisy_0..noisy_{B-1}]``
    (``[2B, D]``), with ``negatives`` a derangement ``[B]``:

    - signal part: anchor ``clean_i``, positive ``noisy_i`` (same image), negative
      ``clean_{negatives[i]}`` (another image);
    - noise part: anchor ``noisy_i``, positive ``noisy_{negatives[i]}`` (another noisy image),
      negative ``clean_i`` (the anchor's clean version).
    """
    i = torch.arange(batch, device=negatives.device)
    signal = (i, batch + i, negatives)
    noise = (batch + i, batch + negatives, i)
    return signal, noise


def signal_noise_triplet_losses(signal_codes: Tensor, noise_codes: Tensor, negatives: Tensor, *,
                                signal_margin: float, noise_margin: float,
                                normalize: bool = False) -> tuple[Tensor, Tensor]:
    """Triplet margin losses (Euclidean, per-dimension RMS scale) of one latent level.

    Args:
        signal_codes, noise_codes: ``[2B, D_s]`` and ``[2B, D_n]``, rows ordered clean then
            noisy (row ``B + i`` is the noisy version of row ``i``); ``D_n = 0`` (no noise
            part at this level) gives a noise loss of 0.
        negatives: a derangement ``[B]`` choosing the other images.
        signal_margin, noise_margin: margins in RMS-distance units (distance / sqrt(D)), so
            one margin fits latents of any size.
        normalize: scale every code row to unit length first (distances in [0, 2], margins in
            those units), so the triplets cannot be met by merely inflating the codes.

    Returns:
        ``(signal_loss, noise_loss)``, scalars.
    """
    if signal_codes.shape[0] != noise_codes.shape[0] or signal_codes.shape[0] % 2:
        raise ValueError("codes must have the same, even number of rows (clean then noisy)")
    batch = signal_codes.shape[0] // 2
    signal_idx, noise_idx = split_triplets(batch, negatives.to(signal_codes.device))
    def scaled(codes: Tensor) -> Tensor:
        if normalize:
            return codes / codes.norm(dim=1, keepdim=True).clamp_min(1e-8)
        return codes / math.sqrt(codes.shape[1])

    signal = triplet_margin_loss(scaled(signal_codes), signal_idx, margin=signal_margin)
    if noise_codes.shape[1] == 0:  # no noise part at this level (the split lives elsewhere)
        return signal, signal.new_zeros(())
    noise = triplet_margin_loss(scaled(noise_codes), noise_idx, margin=noise_margin)
    return signal, noise
