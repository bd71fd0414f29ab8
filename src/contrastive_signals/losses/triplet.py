"""Triplet margin loss over index triplets from any miner."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .miners import (
    Metric,
    Triplets,
    all_triplets,
    batch_hard_triplets,
    check_embeddings_and_labels,
    check_metric,
    pairwise_distances,
    safe_sqrt,
    semi_hard_triplets,
)

Miner = Callable[..., Triplets]

# One keyword signature for every miner, (embeddings, labels, *, margin, metric), so the
# choice of miner is a plain string in the parameters file.
MINERS: dict[str, Miner] = {
    "batch_hard": lambda embeddings, labels, *, margin, metric: batch_hard_triplets(
        embeddings, labels, metric=metric
    ),
    "semi_hard": lambda embeddings, labels, *, margin, metric: semi_hard_triplets(
        embeddings, labels, margin=margin, metric=metric
    ),
    "all": lambda embeddings, labels, *, margin, metric: all_triplets(labels),
}


def _row_distances(x: Tensor, y: Tensor, metric: Metric) -> Tensor:
    """Distance between matching rows of ``x`` and ``y`` (both ``[T, D]``) -> ``[T]``."""
    if metric == "cosine":
        return 1.0 - F.cosine_similarity(x, y, dim=1)
    d2 = (x - y).square().sum(dim=1)
    return d2 if metric == "squared_euclidean" else safe_sqrt(d2)


def triplet_margin_loss(
    embeddings: Tensor,
    triplets: Triplets,
    *,
    margin: float,
    metric: Metric = "euclidean",
) -> Tensor:
    """Mean over triplets of ``relu(d(a, p) - d(a, n) + margin)``.

    Args:
        embeddings: ``[N, D]``.
        triplets: ``(anchor_idx, positive_idx, negative_idx)``, three ``[T]`` LongTensors.
        margin: ``>= 0``.
        metric: ``"euclidean"`` (raw embeddings), ``"squared_euclidean"`` or ``"cosine"``.

    Returns:
        Scalar tensor; a graph-connected zero when ``T == 0``.
    """
    check_metric(metric)
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be [N, D], got {tuple(embeddings.shape)}")
    a, p, n = triplets
    if not (a.shape == p.shape == n.shape and a.ndim == 1):
        raise ValueError(
            "triplets must be three 1-D index tensors of equal length; got shapes "
            f"{tuple(a.shape)}, {tuple(p.shape)}, {tuple(n.shape)}"
        )
    if a.numel() == 0:
        return embeddings.sum() * 0.0
    if a.numel() <= embeddings.shape[0]:
        # Few triplets (batch-hard, semi-hard on small batches): direct row distances
        # are cheaper than the full matrix and exact for near-coincident points.
        e_a, e_p, e_n = embeddings[torch.stack([a, p, n])]  # one gather, one backward
        d_ap, d_an = _row_distances(e_a, e_p, metric), _row_distances(e_a, e_n, metric)
    else:
        # Many triplets (e.g. all of them): one [N, N] matrix, then gathers.
        dist = pairwise_distances(embeddings, metric=metric)
        d_ap, d_an = dist[a, p], dist[a, n]
    return F.relu(d_ap - d_an + margin).mean()


def mined_triplet_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: float,
    mining: Literal["batch_hard", "semi_hard", "all"],
    metric: Metric = "euclidean",
) -> Tensor:
    """Mine triplets from a labelled batch, then apply :func:`triplet_margin_loss`.

    Args:
        embeddings: ``[N, D]``.
        labels: ``[N]`` integer class labels.
        margin: triplet margin (also the semi-hard band width).
        mining: a key of :data:`MINERS`.
        metric: distance for both mining and the loss.

    Returns:
        Scalar tensor.
    """
    if mining not in MINERS:
        raise ValueError(f"unknown mining {mining!r}; choose one of {tuple(MINERS)}")
    check_metric(metric)
    check_embeddings_and_labels(embeddings, labels)
    triplets = MINERS[mining](embeddings, labels, margin=margin, metric=metric)
    return triplet_margin_loss(embeddings, triplets, margin=margin, metric=metric)
