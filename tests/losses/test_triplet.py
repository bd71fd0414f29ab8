"""Triplet margin loss against a loop, hand-worked values and pytorch-metric-learning."""

import math

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
from pytorch_metric_learning.reducers import MeanReducer

from contrastive_signals.losses import (
    MINERS,
    all_triplets,
    batch_hard_triplets,
    mined_triplet_loss,
    semi_hard_triplets,
    triplet_margin_loss,
)
from tests.losses.batches import clustered_batch as _batch


def _loop_triplet(x, triplets, margin, metric):
    """Mean over triplets of max(0, d(a,p) - d(a,n) + margin)."""
    rows = x.tolist()

    def dist(i, j):
        if metric == "cosine":
            u, v = rows[i], rows[j]
            dot = sum(a * b for a, b in zip(u, v, strict=True))
            return 1 - dot / (math.hypot(*u) * math.hypot(*v))
        d = math.dist(rows[i], rows[j])
        return d * d if metric == "squared_euclidean" else d

    terms = [
        max(0.0, dist(a, p) - dist(a, n) + margin)
        for a, p, n in zip(*(t.tolist() for t in triplets), strict=True)
    ]
    return sum(terms) / len(terms)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "all"])
@pytest.mark.parametrize("metric", ["euclidean", "squared_euclidean", "cosine"])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_matches_loop_formula(mining, metric, margin, seed):
    # "all" exercises the [N, N]-matrix path (T > N), the miners the row-distance path.
    x, labels = _batch(16, 4, 3, seed)
    triplets = MINERS[mining](x, labels, margin=margin, metric=metric)
    assert triplets[0].numel() > 0
    got = triplet_margin_loss(x, triplets, margin=margin, metric=metric)
    assert got.item() == pytest.approx(_loop_triplet(x, triplets, margin, metric), rel=1e-9)
    via_mined = mined_triplet_loss(x, labels, margin=margin, mining=mining, metric=metric)
    torch.testing.assert_close(via_mined, got)


# Four points on a line: x0=0, x1=1 (label 0); x2=1.5, x3=3.2 (label 1); margin 1.
POINTS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.5, 0.0], [3.2, 0.0]], dtype=torch.float64)
POINT_LABELS = torch.tensor([0, 0, 1, 1])


def test_analytic_batch_hard():
    # Per anchor (hardest p, hardest n): a0 (x1 d=1, x2 d=1.5) -> 0.5; a1 (x0 d=1, x2 d=0.5)
    # -> 1.5; a2 (x3 d=1.7, x1 d=0.5) -> 2.2; a3 (x2 d=1.7, x1 d=2.2) -> 0.5. Mean 4.7/4.
    triplets = batch_hard_triplets(POINTS, POINT_LABELS)
    assert {tuple(t) for t in torch.stack(triplets, 1).tolist()} == {
        (0, 1, 2),
        (1, 0, 2),
        (2, 3, 1),
        (3, 2, 1),
    }
    got = mined_triplet_loss(POINTS, POINT_LABELS, margin=1.0, mining="batch_hard")
    assert got.item() == pytest.approx(4.7 / 4, rel=1e-12)


def test_analytic_semi_hard():
    # Band (d_ap, d_ap + 1): (0,1): d_ap=1, x2 at 1.5 in band -> 0.5; (1,0): negatives at
    # 0.5 and 2.2, none in (1, 2); (2,3): d_ap=1.7, negatives at 1.5 and 0.5, none above;
    # (3,2): d_ap=1.7, x1 at 2.2 in (1.7, 2.7) -> 0.5. Mean 0.5.
    triplets = semi_hard_triplets(POINTS, POINT_LABELS, margin=1.0)
    assert {tuple(t) for t in torch.stack(triplets, 1).tolist()} == {(0, 1, 2), (3, 2, 1)}
    got = mined_triplet_loss(POINTS, POINT_LABELS, margin=1.0, mining="semi_hard")
    assert got.item() == pytest.approx(0.5, rel=1e-12)


def test_analytic_all():
    # All 8 triplets: a0: 0.5, 0; a1: 1.5, 0; a2: 1.2, 2.2; a3: 0, 0.5. Mean 5.9/8.
    got = mined_triplet_loss(POINTS, POINT_LABELS, margin=1.0, mining="all")
    assert got.item() == pytest.approx(5.9 / 8, rel=1e-12)


def _pml_loss(margin):
    # Raw Euclidean distances (PML's LpDistance normalises by default) and a plain mean
    # over triplets (PML's default AvgNonZeroReducer averages only the non-zero ones).
    return TripletMarginLoss(
        margin=margin, distance=LpDistance(normalize_embeddings=False), reducer=MeanReducer()
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.1, 1.0])
def test_batch_hard_matches_pml(margin, seed):
    x, labels = _batch(40, 6, 6, seed)
    ours_in, pml_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = mined_triplet_loss(ours_in, labels, margin=margin, mining="batch_hard")
    miner = BatchHardMiner(distance=LpDistance(normalize_embeddings=False))
    pml = _pml_loss(margin)(pml_in, labels, miner(pml_in, labels))
    torch.testing.assert_close(ours, pml, rtol=1e-9, atol=1e-12)
    ours.backward()
    pml.backward()
    assert torch.isfinite(ours_in.grad).all()
    torch.testing.assert_close(ours_in.grad, pml_in.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_semi_hard_loss_matches_pml_on_same_triplets(margin, seed):
    # The miners differ by design (see test_miners), so PML's loss is evaluated on our
    # triplets; PML's own semi-hard set gives a different (mean over more triplets) value.
    x, labels = _batch(30, 4, 4, seed)
    triplets = semi_hard_triplets(x, labels, margin=margin)
    ours = triplet_margin_loss(x, triplets, margin=margin)
    torch.testing.assert_close(ours, _pml_loss(margin)(x, labels, triplets), rtol=1e-9, atol=1e-12)
    pml_miner = TripletMarginMiner(
        margin=margin, type_of_triplets="semihard", distance=LpDistance(normalize_embeddings=False)
    )
    pml_triplets = pml_miner(x, labels)
    torch.testing.assert_close(
        triplet_margin_loss(x, pml_triplets, margin=margin),
        _pml_loss(margin)(x, labels, pml_triplets),
        rtol=1e-9,
        atol=1e-12,
    )


def test_all_triplets_matches_pml_without_miner():
    x, labels = _batch(20, 4, 3, 0)
    ours = mined_triplet_loss(x, labels, margin=0.5, mining="all")
    pml = TripletMarginLoss(
        margin=0.5,
        distance=LpDistance(normalize_embeddings=False),
        reducer=MeanReducer(),
        triplets_per_anchor="all",
    )(x, labels)
    torch.testing.assert_close(ours, pml, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mining", sorted(MINERS))
def test_gradients_finite_with_duplicate_embeddings(mining):
    base = torch.randn(6, 4)
    x = torch.cat([base, base]).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 2, 2] * 2)
    labels[-1] = 0  # a duplicate of a label-2 row labelled 0: a negative at distance 0
    loss = mined_triplet_loss(x, labels, margin=0.5, mining=mining)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_no_triplets_gives_connected_zero():
    x = torch.randn(5, 3, requires_grad=True)
    loss = mined_triplet_loss(x, torch.zeros(5, dtype=torch.long), margin=0.5, mining="batch_hard")
    loss.backward()
    assert loss.item() == 0 and torch.equal(x.grad, torch.zeros_like(x))
    empty = all_triplets(torch.arange(5))
    assert triplet_margin_loss(x, empty, margin=0.5).grad_fn is not None


def test_rejects_unknown_mining_naming_the_choices():
    with pytest.raises(ValueError, match="batch_hard.*semi_hard.*all"):
        mined_triplet_loss(torch.randn(4, 3), torch.arange(4), margin=0.5, mining="hardest")


def test_rejects_bad_inputs():
    x, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    triplets = batch_hard_triplets(x, labels)
    with pytest.raises(ValueError, match="margin"):
        triplet_margin_loss(x, triplets, margin=-1.0)
    with pytest.raises(ValueError, match="metric"):
        triplet_margin_loss(x, triplets, margin=1.0, metric="l1")
    with pytest.raises(ValueError, match="triplets"):
        triplet_margin_loss(x, (triplets[0], triplets[1][:1], triplets[2]), margin=1.0)
    with pytest.raises(ValueError, match="labels"):
        mined_triplet_loss(x, labels[:3], margin=1.0, mining="all")
