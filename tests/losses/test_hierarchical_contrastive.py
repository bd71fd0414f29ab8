"""TS2Vec's hierarchical contrastive loss against a slow loop implementation of the paper's
formulas (Yue et al. 2022, Eqs. 1-3), the authors' own code (the `ts2vec` distribution on
PyPI packages their repository) and a value worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_signals.losses.hierarchical_contrastive import (
    contextual_crop_views,
    hierarchical_contrastive_loss,
    instance_contrastive_loss,
    take_crops,
    temporal_contrastive_loss,
)


def loop_temporal(z1, z2):
    """Eq. (1): for series i, timestep t: -log exp(r_t.r'_t) / sum_{t'} (exp(r_t.r'_t') +
    1[t != t'] exp(r_t.r_t')), averaged over both views as anchors, all i and t."""
    b, t, _ = z1.shape
    if t == 1:
        return 0.0
    total, count = 0.0, 0
    for i in range(b):
        for a, o in ((z1[i], z2[i]), (z2[i], z1[i])):
            for s in range(t):
                pos = math.exp(float(a[s] @ o[s]))
                den = sum(math.exp(float(a[s] @ o[u])) for u in range(t))
                den += sum(math.exp(float(a[s] @ a[u])) for u in range(t) if u != s)
                total += -math.log(pos / den)
                count += 1
    return total / count


def loop_instance(z1, z2):
    """Eq. (2): for timestep t, series i: -log exp(r_i.r'_i) / sum_j (exp(r_i.r'_j) +
    1[i != j] exp(r_i.r_j)), averaged over both views as anchors, all i and t."""
    b, t, _ = z1.shape
    if b == 1:
        return 0.0
    total, count = 0.0, 0
    for s in range(t):
        for a, o in ((z1[:, s], z2[:, s]), (z2[:, s], z1[:, s])):
            for i in range(b):
                pos = math.exp(float(a[i] @ o[i]))
                den = sum(math.exp(float(a[i] @ o[j])) for j in range(b))
                den += sum(math.exp(float(a[i] @ a[j])) for j in range(b) if j != i)
                total += -math.log(pos / den)
                count += 1
    return total / count


def loop_hierarchical(z1, z2, alpha, temporal_unit):
    """Algorithm 1: the loss summed over max-pooled scales, divided by their number."""
    loss, d = 0.0, 0
    while z1.shape[1] > 1:
        loss += alpha * loop_instance(z1, z2)
        if d >= temporal_unit:
            loss += (1 - alpha) * loop_temporal(z1, z2)
        d += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), 2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), 2).transpose(1, 2)
    loss += alpha * loop_instance(z1, z2)
    return loss / (d + 1)


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 8, 3), (1, 4, 2), (4, 1, 3)])
@pytest.mark.parametrize(("alpha", "temporal_unit"), [(0.5, 0), (0.3, 1), (1.0, 0)])
def test_matches_loop_implementation(shape, alpha, temporal_unit):
    g = torch.Generator().manual_seed(sum(shape))
    z1 = torch.randn(shape, generator=g, dtype=torch.float64) * 0.7
    z2 = torch.randn(shape, generator=g, dtype=torch.float64) * 0.7
    got = hierarchical_contrastive_loss(z1, z2, alpha=alpha, temporal_unit=temporal_unit)
    assert got.item() == pytest.approx(loop_hierarchical(z1, z2, alpha, temporal_unit), rel=1e-9)
    assert instance_contrastive_loss(z1, z2).item() == pytest.approx(loop_instance(z1, z2))
    assert temporal_contrastive_loss(z1, z2).item() == pytest.approx(loop_temporal(z1, z2))


@pytest.mark.parametrize("shape", [(8, 30, 16), (3, 7, 5), (1, 6, 4), (5, 1, 3)])
@pytest.mark.parametrize(("alpha", "temporal_unit"), [(0.5, 0), (0.3, 2), (0.0, 0), (1.0, 0)])
def test_matches_the_authors_code(shape, alpha, temporal_unit):
    """Loss and gradients equal to ``ts2vec.models.losses.hierarchical_contrastive_loss``
    (which accumulates in float32 whatever the input: compared at float32 precision)."""
    reference_module = pytest.importorskip("ts2vec.models.losses")
    g = torch.Generator().manual_seed(sum(shape) + temporal_unit)
    z1 = (torch.randn(shape, generator=g) * 0.7).requires_grad_()
    z2 = (torch.randn(shape, generator=g) * 0.7).requires_grad_()
    ours = hierarchical_contrastive_loss(z1, z2, alpha=alpha, temporal_unit=temporal_unit)
    theirs = reference_module.hierarchical_contrastive_loss(z1, z2, alpha=alpha,
                                                            temporal_unit=temporal_unit)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5, abs=1e-7)
    if not theirs.requires_grad:  # a constant: one series, or one step with alpha = 0
        assert ours.item() == 0.0
        return
    ours_grads = torch.autograd.grad(ours, (z1, z2))
    theirs_grads = torch.autograd.grad(theirs, (z1, z2))
    for mine, reference in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-6)


def test_hand_computed_value():
    # B=2, T=1, D=1: z1 = [[1], [0]], z2 = [[1], [0]]. Only the instance term at one scale.
    # Anchor z1_0=1: logits to (z1_1, z2_0, z2_1) = (0, 1, 0) -> -log(e / (e + 2)).
    # Anchor z1_1=0: all logits 0 -> -log(1/3); same for the z2 anchors by symmetry.
    z1 = torch.tensor([[[1.0]], [[0.0]]])
    z2 = z1.clone()
    expected = 0.5 * (-math.log(math.e / (math.e + 2)) + math.log(3))  # mean of the 4 anchors
    loss = hierarchical_contrastive_loss(z1, z2, alpha=0.5)
    # alpha * instance / 1 scale
    assert loss.item() == pytest.approx(0.5 * expected, rel=1e-6)


def test_gradient_flows_and_aligned_views_score_lower():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 8, 6, generator=g, requires_grad=True)
    aligned = hierarchical_contrastive_loss(z * 3, z * 3)
    shuffled = hierarchical_contrastive_loss(z * 3, (z * 3).flip(0))
    aligned.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert aligned < shuffled


@pytest.mark.parametrize(("z1", "z2", "kwargs", "match"), [
    (torch.zeros(2, 3, 4), torch.zeros(2, 4, 4), {}, "z1 and z2"),
    (torch.zeros(2, 3), torch.zeros(2, 3), {}, "z1 and z2"),
    (torch.zeros(0, 3, 4), torch.zeros(0, 3, 4), {}, "at least one"),
    (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), {"alpha": 1.5}, "alpha"),
    (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), {"temporal_unit": -1}, "temporal_unit"),
])
def test_bad_inputs(z1, z2, kwargs, match):
    with pytest.raises(ValueError, match=match):
        hierarchical_contrastive_loss(z1, z2, **kwargs)


def test_take_crops_pads_outside_with_nan():
    x = torch.arange(10.0).view(2, 5, 1)
    out = take_crops(x, torch.tensor([-1, 3]), 3)
    assert torch.isnan(out[0, 0, 0]) and out[0, 1:, 0].tolist() == [0.0, 1.0]
    assert out[1, :2, 0].tolist() == [8.0, 9.0] and torch.isnan(out[1, 2, 0])


def test_contextual_crops_overlap_on_the_same_steps():
    # Each value encodes its own time index, so the overlap must hold equal values.
    t = 20
    x = torch.arange(t, dtype=torch.float32).view(1, t, 1).repeat(3, 1, 1)
    mask = torch.ones(3, t, dtype=torch.bool)
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        x1, m1, x2, m2, overlap = contextual_crop_views(x, mask, generator=g)
        assert 2 <= overlap <= t
        a, b = x1[:, -overlap:], x2[:, :overlap]
        both = m1[:, -overlap:] & m2[:, :overlap]
        assert torch.equal(a[both], b[both])
        assert not torch.isnan(x1[m1]).any() and not torch.isnan(x2[m2]).any()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    first, second = (contextual_crop_views(x, mask, generator=g) for g in (g1, g2))
    assert all(torch.equal(u.nan_to_num(-1), v.nan_to_num(-1)) for u, v in
               zip(first[:4], second[:4], strict=True))
