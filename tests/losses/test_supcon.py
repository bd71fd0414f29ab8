"""SupCon (L^sup_out) against a loop over Khosla et al.'s formula, a hand-worked value and PML."""

import math

import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.reducers import MeanReducer

from contrastive_signals.losses import supervised_contrastive_loss


def _batch(n: int, d: int, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    centres = torch.randn(n_classes, d, generator=g, dtype=torch.float64)
    return centres[labels] + torch.randn(n, d, generator=g, dtype=torch.float64), labels


def _loop_supcon(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Khosla et al. 2020, eq. (2) (L^sup_out), skipping anchors without positives."""
    z = torch.nn.functional.normalize(x, dim=1).tolist()
    lab = labels.tolist()
    n = len(z)

    def sim(i, j):
        return sum(a * b for a, b in zip(z[i], z[j], strict=True)) / temperature

    terms = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and lab[p] == lab[i]]
        if not positives:
            continue
        den = sum(math.exp(sim(i, a)) for a in range(n) if a != i)
        terms.append(-sum(math.log(math.exp(sim(i, p)) / den) for p in positives) / len(positives))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n,d,n_classes", [(4, 3, 2), (12, 5, 3), (24, 8, 10)])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_matches_loop_formula(n, d, n_classes, temperature, seed):
    x, labels = _batch(n, d, n_classes, seed)
    got = supervised_contrastive_loss(x, labels, temperature=temperature)
    assert got.item() == pytest.approx(_loop_supcon(x, labels, temperature), rel=1e-10)


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_analytic_two_images_two_views(temperature):
    t = temperature
    e1, e2, e3 = torch.eye(3, dtype=torch.float64)
    # Two images, two identical views each, orthogonal images: each anchor's one positive
    # has cos 1 and its two negatives cos 0: l = log(1 + 2 e^{-1/t}).
    x = torch.stack([e1, e1, e2, e2])
    labels = torch.tensor([0, 0, 1, 1])
    expected = math.log(1 + 2 * math.exp(-1 / t))
    got = supervised_contrastive_loss(x, labels, temperature=t)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # A singleton (e3, label 2) is no anchor but a third cos-0 negative for the others:
    # l = log(1 + 3 e^{-1/t}).
    x = torch.cat([x, e3[None]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    expected = math.log(1 + 3 * math.exp(-1 / t))
    got = supervised_contrastive_loss(x, labels, temperature=t)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 4])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_matches_pytorch_metric_learning(temperature, seed):
    # PML's SupConLoss is L^sup_out on cosine similarity, except that an anchor without
    # positives scores 0 and its default AvgNonZeroReducer averages the non-zero losses
    # (ours excludes such anchors explicitly; the two agree as an included anchor's loss
    # is never exactly 0). With every class of size >= 2, MeanReducer agrees too.
    x, labels = _batch(20, 6, 8, seed)  # 8 classes in 20 rows: some singletons likely
    ours_in, pml_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = supervised_contrastive_loss(ours_in, labels, temperature=temperature)
    pml = SupConLoss(temperature=temperature)(pml_in, labels)
    torch.testing.assert_close(ours, pml, rtol=1e-10, atol=1e-12)
    ours.backward()
    pml.backward()
    assert torch.isfinite(ours_in.grad).all()
    torch.testing.assert_close(ours_in.grad, pml_in.grad, rtol=1e-8, atol=1e-12)

    paired = torch.arange(10).repeat(2)
    ours = supervised_contrastive_loss(x, paired, temperature=temperature)
    pml = SupConLoss(temperature=temperature, reducer=MeanReducer())(x, paired)
    torch.testing.assert_close(ours, pml, rtol=1e-10, atol=1e-12)


def test_single_class_batch_differs_from_pml():
    # Khosla's formula still has a (positive) value when all rows share one label;
    # PML returns 0 whenever the batch has no negative pair.
    x, _ = _batch(6, 4, 1, 0)
    labels = torch.zeros(6, dtype=torch.long)
    ours = supervised_contrastive_loss(x, labels, temperature=0.5)
    assert ours.item() == pytest.approx(_loop_supcon(x, labels, 0.5), rel=1e-10)
    assert ours.item() > 0
    assert SupConLoss(temperature=0.5)(x, labels).item() == 0


def test_no_positive_gives_connected_zero():
    x = torch.randn(5, 3, requires_grad=True)
    loss = supervised_contrastive_loss(x, torch.arange(5), temperature=0.5)
    loss.backward()
    assert loss.item() == 0 and torch.equal(x.grad, torch.zeros_like(x))


def test_gradients_finite_with_duplicates_and_small_temperature():
    x = torch.randn(16, 8).repeat(2, 1).requires_grad_()
    loss = supervised_contrastive_loss(x, torch.arange(16).repeat(2) % 5, temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_rejects_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        supervised_contrastive_loss(torch.randn(4, 3), torch.arange(4), temperature=temperature)


@pytest.mark.parametrize("x_shape,labels_shape", [((4, 3), (5,)), ((4,), (4,)), ((4, 3), (4, 1))])
def test_rejects_bad_shapes(x_shape, labels_shape):
    with pytest.raises(ValueError, match="labels"):
        supervised_contrastive_loss(
            torch.randn(x_shape), torch.zeros(labels_shape, dtype=torch.long), temperature=0.5
        )
