"""Soft hierarchical contrastive loss (SoftCLT: Lee, Park, Lee, "Soft Contrastive Learning for
Time Series", ICLR 2024) on TS2Vec's two views.

TS2Vec's loss (:mod:`.hierarchical_contrastive`) gives each anchor one positive (weight 1) and
treats every other candidate as a negative (weight 0). SoftCLT keeps the same softmax over the
same candidates but weights every candidate's negative log-probability by a soft assignment:

- instance term, between series ``i`` and ``j``: ``w_I(i, j) = 2 a sigmoid(-tau_I D(i, j))``
  with ``D`` the distance of the raw series min-max normalised to ``[0, 1]`` over the training
  set and ``a`` the upper bound (``max_weight``); ``w_I(i, i) = 1`` (the other view);
- temporal term, between steps ``t`` and ``t'`` at pooling scale ``d``:
  ``w_T(t, t') = 2 sigmoid(-tau_T 2^d |t - t'|)`` (``1`` at ``t = t'``), sharper at coarser
  scales because one pooled step spans ``2^d`` original steps.

Per anchor the loss is ``-sum_c w(anchor, c) log p(anchor, c)`` over the ``2n - 1`` other rows
of its group, averaged over anchors (the weights are not renormalised, as in the paper). With
identity weights (``tau -> inf``) this is exactly TS2Vec's loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _drop_diagonal(m: Tensor) -> Tensor:
    """``m`` ``[..., R, R]`` without its diagonal, ``[..., R, R - 1]``: row ``r``'s entries in
    the order of the other rows (the layout of TS2Vec's logits)."""
    return torch.tril(m, diagonal=-1)[..., :-1] + torch.triu(m, diagonal=1)[..., 1:]


def soft_pairwise_view_loss(z: Tensor, weights: Tensor) -> Tensor:
    """Soft InfoNCE of ``z`` ``[G, 2n, D]``: rows ``i`` and ``n + i`` are two views of item ``i``;
    every row is an anchor against the ``2n - 1`` other rows of its group, candidate ``c`` of
    anchor ``r`` weighted by ``weights[item(r), item(c)]`` (``weights`` ``[n, n]`` or
    ``[G, n, n]``, ``item(r) = r mod n``; the diagonal weights the other view). Returns the mean
    over the ``2nG`` anchors of ``-sum_c w log p``."""
    g, rows = z.shape[:2]
    logits = _drop_diagonal(z @ z.transpose(1, 2))  # [G, 2n, 2n - 1]
    nll = -F.log_softmax(logits, dim=-1)
    both_views = weights.repeat(*([1] * (weights.ndim - 2)), 2, 2)  # [(G,) 2n, 2n]
    return (nll * _drop_diagonal(both_views.to(nll.dtype))).sum() / (g * rows)


def temporal_soft_weights(steps: int, tau: float, *, device: torch.device | None = None
                          ) -> Tensor:
    """``[steps, steps]`` weights ``2 sigmoid(-tau |t - t'|)`` (``1`` on the diagonal);
    ``tau = inf`` gives the identity (TS2Vec's hard temporal term)."""
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    t = torch.arange(steps, device=device, dtype=torch.float32)
    lag = (t.view(-1, 1) - t.view(1, -1)).abs()
    if math.isinf(tau):
        return (lag == 0).float()
    return 2 * torch.sigmoid(-tau * lag)


def distance_range(distances: Tensor) -> tuple[float, float]:
    """``(min, max)`` of the off-diagonal entries of ``distances`` ``[N, N]`` (``N >= 2``): the
    range that :func:`instance_soft_weights` maps to ``[0, 1]``."""
    n = distances.shape[0]
    if distances.ndim != 2 or distances.shape[1] != n or n < 2:
        raise ValueError(f"distances must be square [N, N] with N >= 2, got "
                         f"{tuple(distances.shape)}")
    off = distances[~torch.eye(n, dtype=torch.bool, device=distances.device)]
    return float(off.min()), float(off.max())


def instance_soft_weights(distances: Tensor, tau: float, *, max_weight: float = 0.5,
                          scale: tuple[float, float] | None = None) -> Tensor:
    """Soft instance assignments ``[N, N]`` from pairwise distances ``[N, N]`` between raw
    series: distances mapped from ``scale = (low, high)`` (``None``: :func:`distance_range` of
    ``distances``; the training set's when ``distances`` are a batch's) to ``[0, 1]``, then
    ``2 max_weight sigmoid(-tau D)``; ``1`` on the diagonal. ``tau = inf`` gives the identity
    (TS2Vec's hard instance term)."""
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must be square [N, N], got {tuple(distances.shape)}")
    if tau < 0 or not 0 <= max_weight <= 1:
        raise ValueError(f"tau must be >= 0 and max_weight in [0, 1], got {tau}, {max_weight}")
    n = distances.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=distances.device)
    if math.isinf(tau) or n == 1:
        return eye.float()
    low, high = distance_range(distances) if scale is None else scale
    scaled = ((distances.float() - low) / (high - low)).clamp(0, 1) if high > low \
        else torch.zeros(n, n, device=distances.device)
    weights = 2 * max_weight * torch.sigmoid(-tau * scaled)
    return torch.where(eye, torch.ones_like(weights), weights)


def soft_hierarchical_contrastive_loss(z1: Tensor, z2: Tensor, *,
                                       instance_weights: Tensor | None = None,
                                       tau_temporal: float = math.inf, alpha: float = 0.5,
                                       temporal_unit: int = 0) -> Tensor:
    """SoftCLT's loss over all max-pooled scales of the two views ``z1``, ``z2`` ``[B, T, D]``
    (the scales and their weighting are TS2Vec's, see :mod:`.hierarchical_contrastive`).

    Args:
        instance_weights: ``[B, B]`` soft assignments between the batch's series
            (:func:`instance_soft_weights` of the training set, indexed by the batch); ``None``:
            TS2Vec's hard instance term.
        tau_temporal: sharpness of the temporal assignments at the finest scale (doubled at
            each coarser one); ``inf``: TS2Vec's hard temporal term.
        alpha: weight of the instance term (``1 - alpha``: temporal).
        temporal_unit: the first scale with a temporal term.

    Returns:
        Scalar tensor.
    """
    if z1.ndim != 3 or z1.shape != z2.shape or z1.shape[0] == 0 or z1.shape[1] == 0:
        raise ValueError(f"z1 and z2 must both be [B, T, D] with B, T >= 1; got "
                         f"{tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    if instance_weights is None:
        instance_weights = torch.eye(b, device=z1.device)
    if instance_weights.shape != (b, b):
        raise ValueError(f"instance_weights must be [B, B] = [{b}, {b}], got "
                         f"{tuple(instance_weights.shape)}")
    if not 0.0 <= alpha <= 1.0 or temporal_unit < 0:
        raise ValueError(f"alpha must lie in [0, 1] and temporal_unit be >= 0, got {alpha}, "
                         f"{temporal_unit}")

    def instance(z1: Tensor, z2: Tensor) -> Tensor:
        if b == 1:
            return z1.new_zeros(())
        return soft_pairwise_view_loss(torch.cat([z1, z2], 0).transpose(0, 1), instance_weights)

    loss, scale = z1.new_zeros(()), 0
    while z1.shape[1] > 1:
        if alpha != 0:
            loss = loss + alpha * instance(z1, z2)
        if scale >= temporal_unit and alpha != 1:
            lag = temporal_soft_weights(z1.shape[1], tau_temporal * 2 ** scale, device=z1.device)
            loss = loss + (1 - alpha) * soft_pairwise_view_loss(torch.cat([z1, z2], 1), lag)
        scale += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if alpha != 0:
        loss = loss + alpha * instance(z1, z2)
    return loss / (scale + 1)
