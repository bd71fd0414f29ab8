"""SoftCLT's soft hierarchical loss against a slow loop implementation of the paper's formulas
(Lee et al., ICLR 2024, Eqs. 3-6: soft assignments ``2 a sigmoid(-tau D)`` between series,
``2 sigmoid(-tau |t - t'|)`` between steps, each anchor's loss ``-sum_c w log p``), and against
TS2Vec's loss when the assignments are hard."""

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_signals.losses.hierarchical_contrastive import hierarchical_contrastive_loss
from contrastive_signals.losses.soft_contrastive import (
    distance_range,
    instance_soft_weights,
    soft_hierarchical_contrastive_loss,
    soft_pairwise_view_loss,
    temporal_soft_weights,
)


def _views(b=5, t=11, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, d, generator=g, dtype=torch.float64) * 0.5,
            torch.randn(b, t, d, generator=g, dtype=torch.float64) * 0.5)


def loop_soft_term(rows, weight):
    """One group of ``2n`` rows (``rows[i]``, ``rows[n + i]``: two views of item ``i``): for
    each anchor ``r``, ``-sum_{c != r} weight(r mod n, c mod n) log softmax_{c != r}(r . c)``,
    averaged over the anchors."""
    total, count = 0.0, 0
    two_n = len(rows)
    n = two_n // 2
    for r in range(two_n):
        others = [c for c in range(two_n) if c != r]
        logits = [float(rows[r] @ rows[c]) for c in others]
        top = max(logits)
        log_z = top + math.log(sum(math.exp(v - top) for v in logits))
        total -= sum(float(weight[r % n][c % n]) * (v - log_z) for c, v in zip(others, logits, strict=True))
        count += 1
    return total / count


def loop_soft_hierarchical(z1, z2, w_inst, tau_temp, alpha, temporal_unit):
    """Eq. 6 over TS2Vec's scales: instance term per step over the batch, temporal term per
    series over the steps (sharpness ``tau_temp * 2**scale``), mean over the scales."""
    total, scale = 0.0, 0
    while True:
        b, t, _ = z1.shape
        inst = sum(loop_soft_term(torch.cat([z1[:, s], z2[:, s]]), w_inst) for s in range(t)) / t
        total += alpha * (inst if b > 1 else 0.0)
        if t == 1:
            break
        if scale >= temporal_unit:
            lag = [[2 / (1 + math.exp(tau_temp * 2 ** scale * abs(p - q))) for q in range(t)]
                   for p in range(t)]
            total += (1 - alpha) * sum(loop_soft_term(torch.cat([z1[i], z2[i]]), lag)
                                       for i in range(b)) / b
        scale += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), 2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), 2).transpose(1, 2)
    return total / (scale + 1)


def test_hard_assignments_give_ts2vecs_loss():
    z1, z2 = _views()
    for alpha, unit in ((0.5, 0), (0.2, 1), (1.0, 0), (0.0, 2)):
        torch.testing.assert_close(
            soft_hierarchical_contrastive_loss(z1, z2, alpha=alpha, temporal_unit=unit),
            hierarchical_contrastive_loss(z1, z2, alpha=alpha, temporal_unit=unit))
    identity = instance_soft_weights(torch.rand(5, 5), math.inf)
    torch.testing.assert_close(
        soft_hierarchical_contrastive_loss(z1, z2, instance_weights=identity),
        hierarchical_contrastive_loss(z1, z2))


@pytest.mark.parametrize(("b", "t", "tau_temp", "alpha", "unit"), [
    (5, 11, 1.0, 0.5, 0), (4, 8, 0.3, 0.7, 1), (1, 6, 2.0, 0.5, 0), (3, 1, 1.0, 0.5, 0)])
def test_soft_loss_matches_the_papers_formula(b, t, tau_temp, alpha, unit):
    z1, z2 = _views(b, t)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, 7, generator=g, dtype=torch.float64)
    weights = instance_soft_weights(torch.cdist(x, x), 3.0, max_weight=0.4)
    expected = loop_soft_hierarchical(z1, z2, weights.tolist(), tau_temp, alpha, unit)
    got = soft_hierarchical_contrastive_loss(z1, z2, instance_weights=weights,
                                             tau_temporal=tau_temp, alpha=alpha,
                                             temporal_unit=unit)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_pairwise_term_with_per_group_weights():
    z = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    w = torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = sum(loop_soft_term(z[k], w[k].tolist()) for k in range(3)) / 3
    assert float(soft_pairwise_view_loss(z, w)) == pytest.approx(expected, rel=1e-9)


def test_gradient_flows_to_both_views():
    z1, z2 = (z.requires_grad_() for z in _views(4, 9))
    weights = instance_soft_weights(torch.rand(4, 4) + torch.rand(4, 4).T, 2.0)
    soft_hierarchical_contrastive_loss(z1, z2, instance_weights=weights,
                                       tau_temporal=1.0).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_instance_weights_from_distances():
    d = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    w = instance_soft_weights(d, 4.0, max_weight=0.5)
    assert torch.equal(torch.diagonal(w), torch.ones(3))
    # nearest pair (D = 0 after scaling) gets max_weight, the farthest (D = 1) 2a sigmoid(-tau)
    assert float(w[0, 1]) == pytest.approx(0.5)
    assert float(w[0, 2]) == pytest.approx(2 * 0.5 / (1 + math.exp(4.0)))
    assert float(w[1, 2]) == pytest.approx(1 / (1 + math.exp(2.0)))
    assert distance_range(d) == (1.0, 3.0)
    # a batch scaled with the training set's range; beyond it clamps
    batch = instance_soft_weights(torch.tensor([[0.0, 5.0], [5.0, 0.0]]), 4.0, scale=(1.0, 3.0))
    assert float(batch[0, 1]) == pytest.approx(1 / (1 + math.exp(4.0)))
    assert torch.equal(instance_soft_weights(d, math.inf), torch.eye(3))
    # all distances equal: every other series gets max_weight
    assert float(instance_soft_weights(torch.ones(3, 3) - torch.eye(3), 2.0)[0, 1]) == 0.5


def test_temporal_weights():
    w = temporal_soft_weights(4, 1.0)
    assert torch.equal(torch.diagonal(w), torch.ones(4))
    assert float(w[0, 2]) == pytest.approx(2 / (1 + math.exp(2.0)))
    assert torch.equal(w, w.T)
    assert torch.equal(temporal_soft_weights(3, math.inf), torch.eye(3))
    assert torch.equal(temporal_soft_weights(3, 0.0), torch.ones(3, 3))


@pytest.mark.parametrize(("call", "match"), [
    (lambda z: soft_hierarchical_contrastive_loss(z, z[:, :-1]), r"\[B, T, D\]"),
    (lambda z: soft_hierarchical_contrastive_loss(z, z, instance_weights=torch.eye(3)),
     r"instance_weights must be \[B, B\]"),
    (lambda z: soft_hierarchical_contrastive_loss(z, z, alpha=1.5), "alpha"),
    (lambda z: instance_soft_weights(torch.rand(2, 3), 1.0), "square"),
    (lambda z: instance_soft_weights(torch.rand(3, 3), -1.0), "tau"),
    (lambda z: instance_soft_weights(torch.rand(3, 3), 1.0, max_weight=2.0), "max_weight"),
    (lambda z: temporal_soft_weights(3, -0.5), "tau"),
    (lambda z: distance_range(torch.zeros(1, 1)), "N >= 2"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(2, 4, 3))
