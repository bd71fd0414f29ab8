"""Miners against loops over their definitions and against pytorch-metric-learning."""

import math

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from contrastive_signals.losses import (
    all_triplets,
    batch_hard_triplets,
    pairwise_distances,
    semi_hard_triplets,
)
from tests.losses.batches import clustered_batch as _batch


def _loop_distance(u, v, metric):
    if metric == "cosine":
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return 1 - dot / (math.hypot(*u) * math.hypot(*v))
    d = math.dist(u, v)
    return d * d if metric == "squared_euclidean" else d


def _loop_matrix(x, metric):
    rows = x.tolist()
    return [[_loop_distance(u, v, metric) for v in rows] for u in rows]


def _as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets), strict=True))


METRICS = ["euclidean", "squared_euclidean", "cosine"]


@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_distances_match_loop(metric):
    x, _ = _batch(10, 4, 3, 0)
    got = pairwise_distances(x, metric=metric)
    torch.testing.assert_close(got, torch.tensor(_loop_matrix(x, metric), dtype=torch.float64))
    assert torch.equal(got.diagonal(), torch.zeros(10, dtype=torch.float64))


def test_pairwise_distances_gradient_finite_for_duplicates():
    x = torch.randn(4, 3).repeat(2, 1).requires_grad_()
    pairwise_distances(x, metric="euclidean").sum().backward()
    assert torch.isfinite(x.grad).all()


def test_pairwise_distances_rejects_unknown_metric():
    with pytest.raises(ValueError, match="cosine"):
        pairwise_distances(torch.randn(3, 2), metric="manhattan")


@pytest.mark.parametrize("seed", [0, 1])
def test_all_triplets_match_loop_and_pml(seed):
    _, labels = _batch(14, 2, 4, seed)
    lab = labels.tolist()
    expected = {
        (a, p, n)
        for a in range(14)
        for p in range(14)
        for n in range(14)
        if p != a and lab[p] == lab[a] and lab[n] != lab[a]
    }
    got = all_triplets(labels)
    assert _as_set(got) == expected and len(got[0]) == len(expected)
    assert _as_set(lmu.get_all_triplets_indices(labels)) == expected
    assert all(t.dtype == torch.long for t in got)


def _loop_batch_hard(x, labels, metric):
    """Hermans et al. 2017: per anchor, the furthest positive and the closest negative."""
    dist, lab = _loop_matrix(x, metric), labels.tolist()
    out = set()
    for a in range(len(lab)):
        pos = [p for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        neg = [n for n in range(len(lab)) if lab[n] != lab[a]]
        if pos and neg:
            out.add((a, max(pos, key=lambda p: dist[a][p]), min(neg, key=lambda n: dist[a][n])))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n,n_classes", [(6, 2), (20, 4), (40, 12)])
@pytest.mark.parametrize("metric", METRICS)
def test_batch_hard_matches_loop(n, n_classes, metric, seed):
    x, labels = _batch(n, 5, n_classes, seed)
    assert _as_set(batch_hard_triplets(x, labels, metric=metric)) == _loop_batch_hard(
        x, labels, metric
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "metric,pml_distance",
    [
        ("euclidean", LpDistance(normalize_embeddings=False)),
        # PML's cosine similarity is inverted (larger = closer); 1 - cos ranks identically.
        ("cosine", CosineSimilarity()),
    ],
)
def test_batch_hard_matches_pml(metric, pml_distance, seed):
    # PML's LpDistance normalises embeddings by default; ours uses raw embeddings.
    x, labels = _batch(32, 6, 5, seed)
    labels[0] = 99  # an anchor without positive: both skip it
    pml = BatchHardMiner(distance=pml_distance)(x, labels)
    assert _as_set(batch_hard_triplets(x, labels, metric=metric)) == _as_set(pml)


def _loop_semi_hard(x, labels, margin, metric):
    """FaceNet: for each (a, p) the closest n with d(a,p) < d(a,n) < d(a,p) + margin."""
    dist, lab = _loop_matrix(x, metric), labels.tolist()
    out = set()
    for a in range(len(lab)):
        for p in range(len(lab)):
            if p == a or lab[p] != lab[a]:
                continue
            band = [
                n
                for n in range(len(lab))
                if lab[n] != lab[a] and dist[a][p] < dist[a][n] < dist[a][p] + margin
            ]
            if band:
                out.add((a, p, min(band, key=lambda n: dist[a][n])))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n,n_classes", [(8, 2), (24, 4)])
@pytest.mark.parametrize("margin", [0.2, 1.0])
@pytest.mark.parametrize("metric", METRICS)
def test_semi_hard_matches_loop(n, n_classes, margin, metric, seed):
    x, labels = _batch(n, 4, n_classes, seed)
    got = semi_hard_triplets(x, labels, margin=margin, metric=metric)
    assert _as_set(got) == _loop_semi_hard(x, labels, margin, metric)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_semi_hard_relates_to_pml(margin, seed):
    # PML's TripletMarginMiner("semihard") keeps *every* triplet with
    # 0 < d(a,n) - d(a,p) <= margin; FaceNet (ours) keeps only the closest such negative
    # per positive pair. So: same positive pairs, ours a subset, and our negative is the
    # argmin of d(a, n) over PML's negatives for that pair.
    x, labels = _batch(30, 4, 4, seed)
    ours = _as_set(semi_hard_triplets(x, labels, margin=margin))
    pml_miner = TripletMarginMiner(
        margin=margin, type_of_triplets="semihard", distance=LpDistance(normalize_embeddings=False)
    )
    pml = _as_set(pml_miner(x, labels))
    assert ours <= pml
    assert {(a, p) for a, p, _ in ours} == {(a, p) for a, p, _ in pml}
    dist = torch.cdist(x, x)
    for a, p, n in ours:
        assert all(dist[a, n] <= dist[a, m] for a2, p2, m in pml if (a2, p2) == (a, p))


def test_miners_return_long_and_do_not_track_gradients():
    x, labels = _batch(12, 3, 3, 0)
    x.requires_grad_()
    for triplets in (
        batch_hard_triplets(x, labels),
        semi_hard_triplets(x, labels, margin=1.0),
        all_triplets(labels),
    ):
        assert all(t.dtype == torch.long and not t.requires_grad for t in triplets)


def test_no_positive_or_no_negative_gives_empty():
    x = torch.randn(5, 3)
    for labels in (torch.arange(5), torch.zeros(5, dtype=torch.long)):
        for triplets in (
            batch_hard_triplets(x, labels),
            semi_hard_triplets(x, labels, margin=1.0),
            all_triplets(labels),
        ):
            assert all(t.numel() == 0 for t in triplets)


def test_miners_reject_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        batch_hard_triplets(torch.randn(4, 3), torch.arange(3))
    with pytest.raises(ValueError, match="margin"):
        semi_hard_triplets(torch.randn(4, 3), torch.arange(4), margin=0.0)
    with pytest.raises(ValueError, match="metric"):
        batch_hard_triplets(torch.randn(4, 3), torch.arange(4), metric="l1")
