"""NT-Xent against a loop over the SimCLR formula, a hand-worked value and PML."""

import math

import pytest
import torch
from pytorch_metric_learning.losses import NTXentLoss

from contrastive_signals.losses import nt_xent_loss, supervised_contrastive_loss


def _views(b: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a = torch.randn(b, d, generator=g, dtype=torch.float64)
    z_b = z_a + 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)
    return z_a, z_b


def _loop_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> float:
    """Chen et al. 2020, eq. (1), averaged over all 2B anchors, one term at a time."""
    z = torch.cat([z_a, z_b]).tolist()
    b = len(z_a)

    def cos(u, v):
        dot = sum(x * y for x, y in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))

    total = 0.0
    for i in range(2 * b):
        j = (i + b) % (2 * b)
        num = math.exp(cos(z[i], z[j]) / temperature)
        den = sum(math.exp(cos(z[i], z[k]) / temperature) for k in range(2 * b) if k != i)
        total += -math.log(num / den)
    return total / (2 * b)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("b,d", [(1, 3), (2, 4), (7, 5), (16, 8)])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_loop_formula(b, d, temperature, seed):
    z_a, z_b = _views(b, d, seed)
    got = nt_xent_loss(z_a, z_b, temperature=temperature)
    assert got.item() == pytest.approx(_loop_nt_xent(z_a, z_b, temperature), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_analytic_orthogonal_pairs(temperature):
    e1, e2 = torch.eye(2, dtype=torch.float64)
    t = temperature
    # Views agree (z_b = z_a = [e1, e2]): each anchor has cos 1 to its positive and cos 0
    # to its two negatives, so every term is -log(e^{1/t} / (e^{1/t} + 2)) = log(1 + 2e^{-1/t}).
    z = torch.stack([e1, e2])
    expected = math.log(1 + 2 * math.exp(-1 / t))
    assert nt_xent_loss(z, z, temperature=t).item() == pytest.approx(expected, rel=1e-12)
    # Views swapped (z_b = [e2, e1]): the positive has cos 0 and one negative has cos 1,
    # so every term is -log(1 / (1 + 1 + e^{1/t})) = log(2 + e^{1/t}).
    expected = math.log(2 + math.exp(1 / t))
    assert nt_xent_loss(z, z.flip(0), temperature=t).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("b,d,temperature", [(2, 3, 0.5), (8, 16, 0.1), (32, 8, 0.07)])
def test_matches_pytorch_metric_learning(b, d, temperature, seed):
    # PML's NTXentLoss on cat(z_a, z_b) with labels arange(B) twice: its positive pairs are
    # (i, i+B) and (i+B, i), its negatives the 2B-2 differently labelled rows, and its
    # default MeanReducer averages over the 2B positive pairs, i.e. the 2B anchors.
    z_a, z_b = _views(b, d, seed)
    ours_in = [z_a.clone().requires_grad_(), z_b.clone().requires_grad_()]
    pml_in = torch.cat([z_a, z_b]).requires_grad_()
    ours = nt_xent_loss(*ours_in, temperature=temperature)
    pml = NTXentLoss(temperature=temperature)(pml_in, torch.arange(b).repeat(2))
    torch.testing.assert_close(ours, pml, rtol=1e-10, atol=1e-12)
    ours.backward()
    pml.backward()
    grad = torch.cat([x.grad for x in ours_in])
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, pml_in.grad, rtol=1e-8, atol=1e-12)


def test_equals_supcon_with_one_label_per_pair():
    # With labels arange(B) twice, L^sup_out has one positive per anchor: it is NT-Xent.
    z_a, z_b = _views(6, 4, 5)
    supcon = supervised_contrastive_loss(
        torch.cat([z_a, z_b]), torch.arange(6).repeat(2), temperature=0.3
    )
    torch.testing.assert_close(nt_xent_loss(z_a, z_b, temperature=0.3), supcon)


def test_gradients_finite_float32_small_temperature():
    z_a, z_b = (x.float().requires_grad_() for x in _views(64, 16, 2))
    loss = nt_xent_loss(z_a, z_b, temperature=0.01)
    loss.backward()
    assert (
        torch.isfinite(loss) and torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()
    )


@pytest.mark.parametrize("temperature", [0.0, -0.5, float("nan"), float("inf")])
def test_rejects_bad_temperature(temperature):
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, temperature=temperature)


@pytest.mark.parametrize(
    "shape_a,shape_b", [((4, 3), (5, 3)), ((4, 3), (4, 2)), ((4,), (4,)), ((0, 3), (0, 3))]
)
def test_rejects_bad_shapes(shape_a, shape_b):
    with pytest.raises(ValueError, match="z_a"):
        nt_xent_loss(torch.randn(shape_a), torch.randn(shape_b), temperature=0.5)
