"""Leave-one-out retrieval metrics on an embedding set: Recall@K and mean average precision."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

METRICS = ("cosine", "euclidean")


def _similarity(queries: torch.Tensor, gallery: torch.Tensor, metric: str) -> torch.Tensor:
    """Higher-is-closer scores ``[Q, N]`` between ``queries [Q, D]`` and ``gallery [N, D]``."""
    if metric == "cosine":
        return F.normalize(queries, dim=1) @ F.normalize(gallery, dim=1).T
    return -torch.cdist(queries, gallery)


@torch.no_grad()
def retrieval_metrics(
    embeddings: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    *,
    ks: Sequence[int] = (1, 5),
    metric: str = "cosine",
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Use every item as a query against all the others (its own row is masked out).

    Recall@K is the fraction of queries with at least one same-label item among their ``K``
    nearest neighbours. AP of a query is the mean of precision@i over the ranks ``i`` of its
    same-label items in the full ranking of the other ``N - 1`` items; ``map`` averages it.
    Queries whose label occurs only once have nothing to retrieve and are left out of every
    metric (all values are NaN if no label repeats). Ties are broken by item index.

    Args:
        embeddings: ``[N, D]`` float tensor or array (kept on its device).
        labels: ``[N]`` integer labels.
        ks: the ``K`` values, each in ``[1, N - 1]``.
        metric: ``"cosine"`` or ``"euclidean"``.
        chunk_size: queries scored at once; bounds memory to ``O(chunk_size * N)``.

    Returns:
        ``{"recall_at_<k>": float for k in ks, "map": float}``.
    """
    emb = torch.as_tensor(embeddings)
    if not emb.is_floating_point():
        emb = emb.float()
    if emb.dtype in (torch.float16, torch.bfloat16):
        emb = emb.float()  # half precision produces ties and cdist does not support it on CPU
    lab = torch.as_tensor(labels, device=emb.device)
    if emb.ndim != 2 or lab.ndim != 1 or len(emb) != len(lab):
        raise ValueError(
            "embeddings must be [N, D] and labels [N] with the same N; got "
            f"{tuple(emb.shape)} and {tuple(lab.shape)}"
        )
    n = len(emb)
    if n < 2:
        raise ValueError(f"retrieval needs at least 2 items; got {n}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
    ks = tuple(int(k) for k in ks)
    if any(not 1 <= k <= n - 1 for k in ks):
        raise ValueError(f"every k must be in [1, {n - 1}] (the gallery size N - 1); got {ks}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    if not torch.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or inf")

    hits = {k: [] for k in ks}
    average_precisions = []
    ranks = torch.arange(1, n, device=emb.device, dtype=emb.dtype)  # 1 .. N-1
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        rows = torch.arange(start, stop, device=emb.device)
        scores = _similarity(emb[start:stop], emb, metric)
        # -inf sorts the query itself last, so the first N-1 columns are exactly its gallery.
        scores[rows - start, rows] = -torch.inf
        order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, : n - 1]
        relevant = lab[order] == lab[start:stop, None]  # [Q, N-1]
        n_relevant = relevant.sum(dim=1)
        keep = n_relevant > 0
        relevant, n_relevant = relevant[keep], n_relevant[keep]
        for k in ks:
            hits[k].append(relevant[:, :k].any(dim=1))
        rel = relevant.to(emb.dtype)
        precision_at_rank = rel.cumsum(dim=1) / ranks
        average_precisions.append((precision_at_rank * rel).sum(dim=1) / n_relevant)

    def mean(parts: list[torch.Tensor]) -> float:
        values = torch.cat(parts).double()
        return float(values.mean()) if len(values) else float("nan")

    result = {f"recall_at_{k}": mean(hits[k]) for k in ks}
    result["map"] = mean(average_precisions)
    return result
