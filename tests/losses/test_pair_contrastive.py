"""Pair contrastive loss against a loop over Hadsell et al.'s formula, a hand-worked value and PML."""

import math

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import ContrastiveLoss
from pytorch_metric_learning.reducers import MeanReducer
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from contrastive_signals.losses import pair_contrastive_loss


def _batch(n: int, d: int, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    centres = torch.randn(n_classes, d, generator=g, dtype=torch.float64)
    return centres[labels] + 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64), labels


def _loop_pair_contrastive(x, labels, margin, squared):
    """Hadsell, Chopra, LeCun 2006, eq. (4), averaged over the pairs i < j."""
    rows, lab = x.tolist(), labels.tolist()
    terms = []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            d = math.dist(rows[i], rows[j])
            hinge = max(0.0, margin - d)
            if lab[i] == lab[j]:
                terms.append(0.5 * d * d if squared else d)
            else:
                terms.append(0.5 * hinge * hinge if squared else hinge)
    return sum(terms) / len(terms)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n,d,n_classes", [(2, 3, 2), (9, 4, 3), (30, 8, 5)])
@pytest.mark.parametrize("margin", [0.5, 2.0])
@pytest.mark.parametrize("squared", [True, False])
def test_matches_loop_formula(n, d, n_classes, margin, squared, seed):
    x, labels = _batch(n, d, n_classes, seed)
    got = pair_contrastive_loss(x, labels, margin=margin, squared=squared)
    expected = _loop_pair_contrastive(x, labels, margin, squared)
    assert got.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_analytic_four_points():
    # a=(0,0), b=(1,0) share label 0; c=(0,1), e=(0,3) share label 1; margin 2.
    # Pairs: (a,b) pos d=1; (c,e) pos d=2; (a,c) neg d=1; (a,e) neg d=3;
    # (b,c) neg d=sqrt(2); (b,e) neg d=sqrt(10) -- only d < 2 negatives cost anything.
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    squared = (0.5 * 1 + 0.5 * 4 + 0.5 * 1 + 0.5 * (2 - math.sqrt(2)) ** 2) / 6
    plain = (1 + 2 + 1 + (2 - math.sqrt(2))) / 6
    assert pair_contrastive_loss(x, labels, margin=2.0).item() == pytest.approx(squared, rel=1e-12)
    got = pair_contrastive_loss(x, labels, margin=2.0, squared=False)
    assert got.item() == pytest.approx(plain, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("margin", [0.8, 3.0])
def test_matches_pytorch_metric_learning(margin, seed):
    # PML's ContrastiveLoss(pos_margin=0, neg_margin=m) with raw Lp distances is
    # relu(d - 0) = d on positive and relu(m - d) on negative pairs: our squared=False.
    # Its MeanReducer averages positives and negatives *separately* (over ordered pairs,
    # each unordered pair counted twice) and adds the two means, whereas Hadsell's loss
    # averages over all pairs. So the exact mapping is
    #     ours = (n_pos * pml_pos_mean + n_neg * pml_neg_mean) / (n_pos + n_neg),
    # with each PML mean obtained by handing PML only the positive or only the negative
    # pairs. PML has no equivalent of the squared form (LpDistance(power=2) gives
    # relu(m - d^2), not relu(m - d)^2).
    x, labels = _batch(24, 5, 4, seed)
    pml = ContrastiveLoss(
        pos_margin=0,
        neg_margin=margin,
        distance=LpDistance(normalize_embeddings=False),
        reducer=MeanReducer(),
    )
    a1, p, a2, n = lmu.get_all_pairs_indices(labels)
    none = torch.empty(0, dtype=torch.long)
    pml_in = x.clone().requires_grad_()
    pos_mean = pml(pml_in, indices_tuple=(a1, p, none, none))
    neg_mean = pml(pml_in, indices_tuple=(none, none, a2, n))
    n_pos, n_neg = len(a1) // 2, len(a2) // 2
    pml_total = (n_pos * pos_mean + n_neg * neg_mean) / (n_pos + n_neg)
    ours_in = x.clone().requires_grad_()
    ours = pair_contrastive_loss(ours_in, labels, margin=margin, squared=False)
    torch.testing.assert_close(ours, pml_total, rtol=1e-9, atol=1e-12)
    # The unweighted sum PML reports on the full batch is a different number.
    assert pml(x, labels).item() == pytest.approx((pos_mean + neg_mean).item(), rel=1e-9)
    ours.backward()
    pml_total.backward()
    assert torch.isfinite(ours_in.grad).all()
    torch.testing.assert_close(ours_in.grad, pml_in.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("squared", [True, False])
def test_gradients_finite_at_zero_distance(squared):
    # Coincident points in a positive pair and in a negative pair: sqrt'(0) is infinite,
    # the loss must not turn that into nan.
    base = torch.randn(3, 4)
    x = torch.cat([base, base]).requires_grad_()
    labels = torch.tensor([0, 1, 2, 0, 1, 5])  # rows 2 and 5 coincide, labels differ
    loss = pair_contrastive_loss(x, labels, margin=1.0, squared=squared)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_single_row_gives_connected_zero():
    x = torch.randn(1, 3, requires_grad=True)
    loss = pair_contrastive_loss(x, torch.tensor([0]), margin=1.0)
    loss.backward()
    assert loss.item() == 0 and torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("margin", [-0.1, float("nan"), float("inf")])
def test_rejects_bad_margin(margin):
    with pytest.raises(ValueError, match="margin"):
        pair_contrastive_loss(torch.randn(4, 3), torch.arange(4), margin=margin)


@pytest.mark.parametrize("x_shape,labels_shape", [((4, 3), (3,)), ((4,), (4,))])
def test_rejects_bad_shapes(x_shape, labels_shape):
    with pytest.raises(ValueError, match="labels"):
        pair_contrastive_loss(
            torch.randn(x_shape), torch.zeros(labels_shape, dtype=torch.long), margin=1.0
        )
