"""Multi-class hinge loss against loops over both formulas, MultiMarginLoss and gradcheck."""

import pytest
import torch

from contrastive_signals.losses import multiclass_hinge_loss


def _inputs(b: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, generator=g, dtype=torch.float64)
    return logits, torch.randint(0, k, (b,), generator=g)


def _loop(logits: torch.Tensor, labels: torch.Tensor, margin: float, kind: str) -> list[float]:
    """Weston-Watkins: sum_{j != y} max(0, m - s_y + s_j); Crammer-Singer:
    max(0, m - s_y + max_{j != y} s_j); one sample and one class at a time."""
    losses = []
    for scores, y in zip(logits.tolist(), labels.tolist(), strict=True):
        others = [s for j, s in enumerate(scores) if j != y]
        if kind == "weston_watkins":
            losses.append(sum(max(0.0, margin - scores[y] + s) for s in others))
        else:
            losses.append(max(0.0, margin - scores[y] + max(others)))
    return losses


@pytest.mark.parametrize("kind", ["weston_watkins", "crammer_singer"])
@pytest.mark.parametrize("b,k", [(1, 2), (5, 3), (16, 10)])
@pytest.mark.parametrize("margin", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_loop_formula(kind, b, k, margin, seed):
    logits, labels = _inputs(b, k, seed)
    expected = torch.tensor(_loop(logits, labels, margin, kind), dtype=torch.float64)
    per_sample = multiclass_hinge_loss(logits, labels, margin=margin, kind=kind,
                                       reduction="none")
    torch.testing.assert_close(per_sample, expected)
    torch.testing.assert_close(
        multiclass_hinge_loss(logits, labels, margin=margin, kind=kind), expected.mean())
    torch.testing.assert_close(
        multiclass_hinge_loss(logits, labels, margin=margin, kind=kind, reduction="sum"),
        expected.sum())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("b,k", [(1, 2), (8, 5), (32, 10)])
def test_weston_watkins_is_multimarginloss_times_k(reduction, margin, b, k):
    logits, labels = _inputs(b, k, seed=b + k)
    reference = torch.nn.MultiMarginLoss(margin=margin, reduction=reduction)(logits, labels)
    ours = multiclass_hinge_loss(logits, labels, margin=margin, reduction=reduction)
    torch.testing.assert_close(ours / k, reference, rtol=1e-12, atol=1e-12)


def test_hand_worked_values():
    logits = torch.tensor([[2.0, 1.5, -1.0], [0.0, 0.2, 0.9]])
    labels = torch.tensor([0, 1])
    # sample 0: m - s_y + s_j = 0.5 (j=1), -2.0 (j=2); sample 1: 0.8 (j=0), 1.7 (j=2)
    ww = multiclass_hinge_loss(logits, labels, reduction="none")
    cs = multiclass_hinge_loss(logits, labels, kind="crammer_singer", reduction="none")
    torch.testing.assert_close(ww, torch.tensor([0.5, 2.5]))
    torch.testing.assert_close(cs, torch.tensor([0.5, 1.7]))
    # every margin met: zero loss and zero gradient
    separated = torch.tensor([[5.0, 0.0, 1.0]], requires_grad=True)
    loss = multiclass_hinge_loss(separated, torch.tensor([0]))
    loss.backward()
    assert loss.item() == 0.0 and separated.grad.abs().sum() == 0


@pytest.mark.parametrize("kind", ["weston_watkins", "crammer_singer"])
def test_gradcheck(kind):
    # Logits away from the hinge kinks (distinct values, spread by 0.37) so finite
    # differences see one linear piece.
    logits = (torch.arange(12, dtype=torch.float64).view(3, 4) * 0.37).sin().mul(3)
    logits.requires_grad_(True)
    labels = torch.tensor([0, 2, 3])
    assert torch.autograd.gradcheck(
        lambda s: multiclass_hinge_loss(s, labels, margin=0.8, kind=kind), (logits,))


@pytest.mark.parametrize("logits,labels,kwargs,match", [
    (torch.zeros(4), torch.zeros(4, dtype=torch.long), {}, r"logits must be floating point \[B, K\]"),
    (torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), {}, "K >= 2"),
    (torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long), {}, "floating"),
    (torch.zeros(4, 3), torch.zeros(3, dtype=torch.long), {}, r"labels must be integer \[B\]"),
    (torch.zeros(4, 3), torch.zeros(4), {}, "labels must be integer"),
    (torch.zeros(2, 3), torch.tensor([0, 3]), {}, r"labels must lie in \[0, 3\)"),
    (torch.zeros(2, 3), torch.tensor([-1, 0]), {}, "labels must lie"),
    (torch.zeros(2, 3), torch.tensor([0, 1]), {"margin": -1.0}, "margin"),
    (torch.zeros(2, 3), torch.tensor([0, 1]), {"margin": float("nan")}, "margin"),
    (torch.zeros(2, 3), torch.tensor([0, 1]), {"kind": "svm"}, "kind must be one of"),
    (torch.zeros(2, 3), torch.tensor([0, 1]), {"reduction": "max"}, "reduction must be one of"),
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), {}, "empty batch"),
])
def test_bad_inputs(logits, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        multiclass_hinge_loss(logits, labels, **kwargs)


def test_empty_batch_sum_and_none():
    empty = torch.zeros(0, 3)
    labels = torch.zeros(0, dtype=torch.long)
    assert multiclass_hinge_loss(empty, labels, reduction="sum").item() == 0.0
    assert multiclass_hinge_loss(empty, labels, reduction="none").shape == (0,)
