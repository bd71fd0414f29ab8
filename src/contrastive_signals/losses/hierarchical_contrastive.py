"""TS2Vec's hierarchical contrastive loss (Yue et al. 2022, "TS2Vec: Towards Universal
Representation of Time Series", Sec. 3.3).

Two views ``z1``, ``z2`` ``[B, T, D]`` are the per-timestep representations of the overlap of two
random crops of the same series (contextual consistency). At each scale:

- instance term: for timestep ``t``, view ``i``'s positive is the other view of the same series
  at ``t``; negatives are all other series' views at ``t`` (``2B - 2`` of them);
- temporal term: for series ``i``, timestep ``t``'s positive is the other view at ``t``;
  negatives are all other timesteps of both views of series ``i`` (``2T - 2`` of them).

Similarities are plain dot products (no temperature, no normalisation), as in the paper's
code. The scales come from max-pooling over time with kernel 2 until one timestep is left; the
loss is the mean over scales of ``alpha * instance + (1 - alpha) * temporal`` (the temporal
term only from scale ``temporal_unit`` on, and not at the last, single-timestep scale).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _pairwise_view_loss(z: Tensor, n: int) -> Tensor:
    """Mean InfoNCE of ``z`` ``[G, 2n, D]``: in each of the ``G`` groups, row ``i < n`` and row
    ``n + i`` are positives and every other row of the group is a negative."""
    sim = z @ z.transpose(1, 2)  # [G, 2n, 2n]
    # Drop the diagonal (self-similarity): lower triangle shifted left plus upper shifted right.
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1] + torch.triu(sim, diagonal=1)[:, :, 1:]
    nll = -F.log_softmax(logits, dim=-1)  # [G, 2n, 2n - 1]
    i = torch.arange(n, device=z.device)
    return (nll[:, i, n + i - 1].mean() + nll[:, n + i, i].mean()) / 2


def instance_contrastive_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Instance-wise term for ``z1``, ``z2`` ``[B, T, D]``; 0 when ``B == 1``."""
    if z1.shape[0] == 1:
        return z1.new_zeros(())
    return _pairwise_view_loss(torch.cat([z1, z2], dim=0).transpose(0, 1), z1.shape[0])


def temporal_contrastive_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Temporal term for ``z1``, ``z2`` ``[B, T, D]``; 0 when ``T == 1``."""
    if z1.shape[1] == 1:
        return z1.new_zeros(())
    return _pairwise_view_loss(torch.cat([z1, z2], dim=1), z1.shape[1])


def hierarchical_contrastive_loss(z1: Tensor, z2: Tensor, *, alpha: float = 0.5,
                                  temporal_unit: int = 0) -> Tensor:
    """TS2Vec's loss over all max-pooled scales of the two views ``z1``, ``z2`` ``[B, T, D]``.

    Args:
        z1, z2: per-timestep representations of the two crops' overlap, aligned in time.
        alpha: weight of the instance term (``1 - alpha`` for the temporal term), in [0, 1].
        temporal_unit: the first scale (number of poolings) that has a temporal term.

    Returns:
        Scalar tensor.
    """
    if z1.ndim != 3 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be [B, T, D]; got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    if z1.shape[0] == 0 or z1.shape[1] == 0:
        raise ValueError(f"z1 must hold at least one series and timestep, got {tuple(z1.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if temporal_unit < 0:
        raise ValueError(f"temporal_unit must be >= 0, got {temporal_unit}")
    loss, scales = z1.new_zeros(()), 0
    while z1.shape[1] > 1:
        if alpha != 0:
            loss = loss + alpha * instance_contrastive_loss(z1, z2)
        if scales >= temporal_unit and alpha != 1:
            loss = loss + (1 - alpha) * temporal_contrastive_loss(z1, z2)
        scales += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if alpha != 0:
        loss = loss + alpha * instance_contrastive_loss(z1, z2)
    scales += 1
    return loss / scales


def take_crops(x: Tensor, starts: Tensor, length: int) -> Tensor:
    """Per-row windows ``x[i, starts[i] : starts[i] + length]`` of ``x`` ``[B, T, ...]``;
    positions outside ``[0, T)`` read as NaN (TS2Vec's ``take_per_row`` with padding)."""
    b, t = x.shape[:2]
    idx = starts.view(b, 1) + torch.arange(length, device=x.device).view(1, length)  # [B, L]
    inside = (idx >= 0) & (idx < t)
    rows = torch.arange(b, device=x.device).view(b, 1)
    out = x[rows, idx.clamp(0, t - 1)]
    fill = torch.full_like(out, float("nan")) if out.is_floating_point() else torch.zeros_like(out)
    shape = inside.shape + (1,) * (out.ndim - 2)
    return torch.where(inside.view(shape), out, fill)


def contextual_crop_views(x: Tensor, mask: Tensor, *,
                          generator: torch.Generator | np.random.RandomState,
                          temporal_unit: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """TS2Vec's two overlapping random crops of ``x`` ``[B, T, C]`` (mask ``[B, T]``).

    A crop length ``L`` and the overlap ``[a, b)`` are drawn once per batch, the two crops
    ``[a1, b)`` and ``[a, b2)`` with ``a1 <= a`` and ``b2 >= b``, and each series is shifted by
    its own random offset. The overlap is the last ``L`` steps of crop 1 and the first ``L``
    of crop 2. A numpy ``RandomState`` as ``generator`` makes exactly the ``randint`` calls of
    the authors' training loop, in its order (see ``methods._ts2vec_draws``).

    Returns:
        ``(x1, mask1, x2, mask2, L)``: crops ``[B, b - a1, C]`` and ``[B, b2 - a, C]`` with their
        masks (positions shifted outside the series are masked out).
    """
    t = x.shape[1]

    def draw(low: int, high: int, size: int | None = None) -> Tensor:
        if isinstance(generator, np.random.RandomState):
            return torch.as_tensor(generator.randint(low=low, high=high, size=size))
        return torch.randint(low, high, (size or 1,), generator=generator)

    crop_l = int(draw(min(2 ** (temporal_unit + 1), t), t + 1))
    left = int(draw(0, t - crop_l + 1))
    right = left + crop_l
    e_left = int(draw(0, left + 1))
    e_right = int(draw(right, t + 1))
    offset = draw(-e_left, t - e_right + 1, x.shape[0]).to(x.device)
    x1 = take_crops(x, offset + e_left, right - e_left)
    m1 = take_crops(mask, offset + e_left, right - e_left) & ~x1.isnan().any(-1)
    x2 = take_crops(x, offset + left, e_right - left)
    m2 = take_crops(mask, offset + left, e_right - left) & ~x2.isnan().any(-1)
    return x1, m1, x2, m2, crop_l
