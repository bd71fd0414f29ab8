"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_temperature(temperature: float) -> None:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def nt_xent_loss(z_a: Tensor, z_b: Tensor, *, temperature: float) -> Tensor:
    """SimCLR's NT-Xent loss for two views of one batch.

    Row ``i`` of ``z_a`` and row ``i`` of ``z_b`` are two views of the same sample. The
    ``2B`` views are pooled; each view's positive is its other view and the remaining
    ``2B - 2`` views are its negatives. Similarity is cosine similarity over
    ``temperature``; the loss is the mean over all ``2B`` anchors of
    ``-log(exp(s_ip / t) / sum_{k != i} exp(s_ik / t))``.

    Args:
        z_a: ``[B, D]`` embeddings of the first views (need not be normalised).
        z_b: ``[B, D]`` embeddings of the second views.
        temperature: softmax temperature, ``> 0``.

    Returns:
        Scalar tensor.
    """
    _check_temperature(temperature)
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"z_a and z_b must both have shape [B, D]; got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape[0] == 0:
        raise ValueError("z_a and z_b must hold at least one pair (B >= 1)")
    b = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    # A view is never its own negative: -inf drops the diagonal from the softmax.
    logits = ((z @ z.T) / temperature).fill_diagonal_(float("-inf"))  # [2B, 2B]
    idx = torch.arange(b, device=z.device)
    targets = torch.cat([idx + b, idx])  # view i's positive sits B rows away
    return F.cross_entropy(logits, targets)
