"""Margin-based pair contrastive loss of Hadsell, Chopra and LeCun 2006."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .miners import pairwise_distances, safe_sqrt


def pair_contrastive_loss(
    embeddings: Tensor, labels: Tensor, *, margin: float, squared: bool = True
) -> Tensor:
    """Hadsell et al.'s contrastive loss over all unordered pairs ``i < j`` of a batch.

    With Euclidean distance ``d`` between the raw (unnormalised) embeddings, a pair with
    equal labels contributes ``0.5 * d**2`` and a pair with different labels
    ``0.5 * max(0, margin - d)**2``; with ``squared=False`` these become ``d`` and
    ``max(0, margin - d)``. The loss is the mean over all ``N (N - 1) / 2`` pairs.

    Args:
        embeddings: ``[N, D]``.
        labels: ``[N]`` integer class labels.
        margin: ``>= 0``; negatives further apart than this cost nothing.
        squared: Hadsell's squared form (default) or the plain hinge form.

    Returns:
        Scalar tensor; a graph-connected zero when ``N < 2``. Gradients are finite
        (zero) for coincident embeddings.
    """
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if embeddings.ndim != 2 or labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            "embeddings must be [N, D] and labels [N]; got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    n = embeddings.shape[0]
    if n < 2:
        return embeddings.sum() * 0.0
    # Work on the full symmetric [N, N] matrix: each pair i < j appears twice and the
    # diagonal (same label, d = 0) adds 0, so the pair mean is sum / (N (N - 1)). This
    # is cheaper than gathering the upper triangle.
    d2 = pairwise_distances(embeddings, metric="squared_euclidean")
    d = safe_sqrt(d2)
    same = labels[:, None] == labels[None, :]
    if squared:
        # The positive term uses d2 directly: no sqrt, so no gradient blow-up near 0.
        per_pair = torch.where(same, 0.5 * d2, 0.5 * F.relu(margin - d).square())
    else:
        per_pair = torch.where(same, d, F.relu(margin - d))
    return per_pair.sum() / (n * (n - 1))
