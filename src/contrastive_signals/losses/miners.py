"""Triplet miners: each returns ``(anchor_idx, positive_idx, negative_idx)`` LongTensors.

Returning indices rather than a loss (pytorch-metric-learning's design) lets any miner
feed any triplet loss. Miners run under ``no_grad`` on detached embeddings: the choice of
triplet is not differentiated through, only the loss on the chosen triplets is.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Metric = Literal["euclidean", "squared_euclidean", "cosine"]
METRICS: tuple[str, ...] = ("euclidean", "squared_euclidean", "cosine")
Triplets = tuple[Tensor, Tensor, Tensor]


def check_metric(metric: str) -> None:
    """Raise ``ValueError`` unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")


def check_embeddings_and_labels(embeddings: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless ``embeddings`` is ``[N, D]`` and ``labels`` is ``[N]``."""
    if embeddings.ndim != 2 or labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            "embeddings must be [N, D] and labels [N]; got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )


def safe_sqrt(x: Tensor) -> Tensor:
    """Elementwise ``sqrt`` of ``x >= 0`` whose gradient at 0 is 0 instead of inf/nan."""
    # The clamp keeps the untaken branch finite, so where() back-propagates 0, not nan.
    tiny = torch.finfo(x.dtype).tiny
    return torch.where(x > 0, x.clamp_min(tiny).sqrt(), 0.0)


def pairwise_distances(embeddings: Tensor, *, metric: Metric = "euclidean") -> Tensor:
    """All pairwise distances within a batch.

    ``euclidean`` and ``squared_euclidean`` use the raw embeddings (via the Gram-matrix
    identity, one matmul; the diagonal is exactly 0 and the Euclidean gradient is finite
    at 0); ``cosine`` is ``1 - cos`` of the L2-normalised embeddings, in ``[0, 2]``.

    Args:
        embeddings: ``[N, D]``.
        metric: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.

    Returns:
        ``[N, N]`` symmetric distance matrix.
    """
    check_metric(metric)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be [N, D], got {tuple(embeddings.shape)}")
    if metric == "cosine":
        z = F.normalize(embeddings, dim=1)
        return (1.0 - z @ z.T).fill_diagonal_(0.0)
    sq_norm = embeddings.square().sum(dim=1)
    # ||x||^2 + ||y||^2 - 2 x.y in one fused matmul-add. Rounding can make it slightly
    # negative for near-identical rows, hence the clamp.
    d2 = torch.addmm(sq_norm[:, None] + sq_norm[None, :], embeddings, embeddings.T, alpha=-2.0)
    d2 = d2.clamp_min(0.0).fill_diagonal_(0.0)
    return d2 if metric == "squared_euclidean" else safe_sqrt(d2)


def _label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(positive_mask, negative_mask)``, both ``[N, N]`` bool; self is neither."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


@torch.no_grad()
def all_triplets(labels: Tensor) -> Triplets:
    """Every valid triplet ``(a, p, n)``: ``p != a`` shares ``a``'s label, ``n`` does not.

    Args:
        labels: ``[N]`` integer class labels.

    Returns:
        Three ``[T]`` LongTensors, ``T = sum_a |P(a)| * |N(a)|`` (memory is ``O(N^3)``).
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must be [N], got {tuple(labels.shape)}")
    pos, neg = _label_masks(labels)
    a, p, n = (pos[:, :, None] & neg[:, None, :]).nonzero(as_tuple=True)
    return a, p, n


@torch.no_grad()
def batch_hard_triplets(
    embeddings: Tensor, labels: Tensor, *, metric: Metric = "euclidean"
) -> Triplets:
    """Batch-hard mining (Hermans, Beyer, Leibe 2017): one triplet per anchor.

    Each anchor gets its furthest positive and its closest negative. Anchors without a
    positive or without a negative in the batch are skipped.

    Args:
        embeddings: ``[N, D]`` (detached here).
        labels: ``[N]`` integer class labels.
        metric: distance used to rank candidates.

    Returns:
        Three ``[T]`` LongTensors, ``T <= N``, anchors in increasing order.
    """
    check_embeddings_and_labels(embeddings, labels)
    check_metric(metric)
    # Ranking is all that matters here and sqrt is monotone: skip it.
    rank_metric = "squared_euclidean" if metric == "euclidean" else metric
    dist = pairwise_distances(embeddings.detach(), metric=rank_metric)
    same = labels[:, None] == labels[None, :]
    hardest_pos = torch.where(same, dist, float("-inf")).fill_diagonal_(float("-inf")).argmax(dim=1)
    hardest_neg = torch.where(same, float("inf"), dist).argmin(dim=1)
    # Class sizes tell who has a positive and a negative, cheaper than two [N, N] any().
    _, class_of, class_size = torch.unique(labels, return_inverse=True, return_counts=True)
    n_same = class_size[class_of]
    anchors = ((n_same > 1) & (n_same < labels.shape[0])).nonzero(as_tuple=True)[0]
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


@torch.no_grad()
def semi_hard_triplets(
    embeddings: Tensor, labels: Tensor, *, margin: float, metric: Metric = "euclidean"
) -> Triplets:
    """FaceNet's semi-hard mining (Schroff, Kalenichenko, Philbin 2015).

    For every positive pair ``(a, p)`` the chosen negative is the hardest semi-hard one:
    the ``n`` of smallest ``d(a, n)`` among those with ``d(a, p) < d(a, n) < d(a, p) +
    margin``. Pairs with no such negative are dropped.

    Args:
        embeddings: ``[N, D]`` (detached here).
        labels: ``[N]`` integer class labels.
        margin: ``> 0``, the width of the semi-hard band.
        metric: distance used for the band and the ranking.

    Returns:
        Three ``[T]`` LongTensors, at most one triplet per ordered positive pair.
    """
    check_embeddings_and_labels(embeddings, labels)
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    dist = pairwise_distances(embeddings.detach(), metric=metric)
    pos, neg = _label_masks(labels)
    a, p = pos.nonzero(as_tuple=True)  # [M] ordered positive pairs
    d_ap = dist[a, p][:, None]  # [M, 1]
    d_an = dist[a]  # [M, N]
    semi = neg[a] & (d_an > d_ap) & (d_an < d_ap + margin)
    n = d_an.masked_fill(~semi, float("inf")).argmin(dim=1)
    keep = semi.any(dim=1)
    return a[keep], p[keep], n[keep]
