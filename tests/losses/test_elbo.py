"""ELBO pieces against torch.distributions, the triplet terms against a loop over the
paper's formula, torch's own triplet margin loss and a hand-computed value."""

import math

import pytest
import torch
from torch.distributions import Laplace, Normal

from contrastive_signals.losses.elbo import (
    derangement,
    gaussian_nll,
    group_derangement,
    kl_warmup,
    laplace_nll,
    negative_elbo,
    signal_noise_triplet_losses,
    split_triplets,
    swap_consistency_loss,
)


def test_gaussian_nll_matches_normal_log_prob_up_to_its_constant():
    g = torch.Generator().manual_seed(0)
    recon, target = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    std = 0.3
    log_prob = Normal(recon, std).log_prob(target).flatten(1).sum(1)
    constant = 16 * (math.log(std) + 0.5 * math.log(2 * math.pi))
    torch.testing.assert_close(gaussian_nll(recon, target, std=std), -log_prob - constant)


def test_negative_elbo_per_pixel_by_hand():
    recon = torch.zeros(2, 1, 2, 2)
    target = torch.ones(2, 1, 2, 2)
    kl = torch.tensor([4.0, 8.0])
    # nll = 4 / (2 * 0.25) = 8 per image; (8 + 0.5 * kl) / 4 pixels = 2.5 and 3.0 -> mean 2.75
    assert negative_elbo(recon, target, kl, std=0.5, beta=0.5).item() == pytest.approx(2.75)
    with pytest.raises(ValueError, match="beta"):
        negative_elbo(recon, target, kl, std=0.5, beta=-1.0)
    with pytest.raises(ValueError, match="std"):
        gaussian_nll(recon, target, std=0.0)


def test_laplace_nll_matches_laplace_log_prob_up_to_its_constant():
    g = torch.Generator().manual_seed(0)
    recon, target = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    scale = 0.3
    log_prob = Laplace(recon, scale).log_prob(target).flatten(1).sum(1)
    constant = 16 * math.log(2 * scale)
    torch.testing.assert_close(laplace_nll(recon, target, scale=scale), -log_prob - constant)
    # by hand: |0 - 1| * 4 pixels / 0.5 = 8 per image; (8 + 0.5 * kl) / 4 -> 2.5, 3.0
    recon, target, kl = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2), torch.tensor([4.0, 8.0])
    assert negative_elbo(recon, target, kl, std=0.5, beta=0.5,
                         likelihood="laplace").item() == pytest.approx(2.75)
    with pytest.raises(ValueError, match="likelihood"):
        negative_elbo(recon, target, kl, std=0.5, beta=0.5, likelihood="cauchy")
    with pytest.raises(ValueError, match="scale"):
        laplace_nll(recon, target, scale=0.0)


def test_swap_consistency_loss_is_the_per_pixel_likelihood_without_kl():
    swapped, clean = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    # gaussian: 4 pixels * 1 / (2 * 0.25) = 8 per image -> 2 per pixel; laplace: 4 / 0.5 / 4 = 2
    assert swap_consistency_loss(swapped, clean, std=0.5).item() == pytest.approx(2.0)
    assert swap_consistency_loss(swapped, clean, std=0.5,
                                 likelihood="laplace").item() == pytest.approx(2.0)
    assert swap_consistency_loss(clean, clean, std=0.5).item() == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        swap_consistency_loss(swapped[:1], clean, std=0.5)


def test_kl_warmup_is_linear_then_one():
    assert [kl_warmup(s, warmup_steps=4) for s in (0, 2, 4, 9)] == [0.0, 0.5, 1.0, 1.0]
    assert kl_warmup(0, warmup_steps=0) == 1.0


def test_derangement_has_no_fixed_points_and_is_seeded():
    for seed in range(20):
        perm = derangement(5, torch.Generator().manual_seed(seed))
        assert sorted(perm.tolist()) == list(range(5))
        assert all(perm[i] != i for i in range(5))
    a = derangement(7, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, derangement(7, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError):
        derangement(1, torch.Generator())


def test_group_derangement_pairs_within_groups_and_leaves_singletons_out():
    groups = torch.tensor([0, 2, 0, 1, 2, 0, 2])  # group 1 has a single member
    for seed in range(20):
        rows, donors = group_derangement(groups, torch.Generator().manual_seed(seed))
        assert sorted(rows.tolist()) == [0, 1, 2, 4, 5, 6]
        assert (donors != rows).all() and (groups[donors] == groups[rows]).all()
        assert sorted(donors.tolist()) == sorted(rows.tolist())
    rows, donors = group_derangement(torch.tensor([0, 1]), torch.Generator())
    assert rows.numel() == donors.numel() == 0


def test_split_triplets_follow_the_method():
    negatives = torch.tensor([2, 0, 1])
    signal, noise = split_triplets(3, negatives)
    # signal: (clean_i, noisy_i, clean_neg[i]); noise: (noisy_i, noisy_neg[i], clean_i)
    assert [t.tolist() for t in signal] == [[0, 1, 2], [3, 4, 5], [2, 0, 1]]
    assert [t.tolist() for t in noise] == [[3, 4, 5], [5, 3, 4], [0, 1, 2]]


def _loop_triplet(codes, triplets, margin):
    scale = math.sqrt(codes.shape[1])
    total = 0.0
    for a, p, n in zip(*triplets, strict=True):
        d_ap = torch.linalg.vector_norm(codes[a] - codes[p]).item() / scale
        d_an = torch.linalg.vector_norm(codes[a] - codes[n]).item() / scale
        total += max(0.0, d_ap - d_an + margin)
    return total / len(triplets[0])


def _random_codes(seed: int, batch: int = 4, signal_dim: int = 6, noise_dim: int = 3):
    """Signal ``[2B, Ds]`` and noise ``[2B, Dn]`` codes, a derangement and its triplets."""
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(2 * batch, signal_dim, generator=g)
    noise = torch.randn(2 * batch, noise_dim, generator=g)
    negatives = derangement(batch, g)
    return signal, noise, negatives, split_triplets(batch, negatives)


def test_triplet_terms_match_a_loop_over_the_formula():
    signal, noise, negatives, (s_idx, n_idx) = _random_codes(0)
    ours = signal_noise_triplet_losses(signal, noise, negatives, signal_margin=0.7,
                                       noise_margin=0.4)
    assert ours[0].item() == pytest.approx(_loop_triplet(signal, s_idx, 0.7), rel=1e-5)
    assert ours[1].item() == pytest.approx(_loop_triplet(noise, n_idx, 0.4), rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_triplet_terms_match_torch_triplet_margin_loss(seed):
    """Established implementation: ``torch.nn.functional.triplet_margin_loss`` (Euclidean,
    mean over triplets) on the codes scaled by 1 / sqrt(D), our RMS distance."""
    signal, noise, negatives, triplets = _random_codes(seed, batch=5, signal_dim=7, noise_dim=4)
    ours = signal_noise_triplet_losses(signal, noise, negatives, signal_margin=0.9,
                                       noise_margin=0.3)
    for codes, (a, p, n), margin, value in zip(
            (signal, noise), triplets, (0.9, 0.3), ours, strict=True):
        scaled = codes / math.sqrt(codes.shape[1])
        reference = torch.nn.functional.triplet_margin_loss(
            scaled[a], scaled[p], scaled[n], margin=margin, eps=0.0)
        assert value.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)


def test_triplet_terms_by_hand():
    # Two images, 1-D signal codes: clean 0 -> 0, clean 1 -> 2, noisy 0 -> 1, noisy 1 -> 2.
    signal = torch.tensor([[0.0], [2.0], [1.0], [2.0]])
    noise = torch.tensor([[0.0], [0.0], [1.0], [3.0]])
    negatives = torch.tensor([1, 0])
    s, n = signal_noise_triplet_losses(signal, noise, negatives, signal_margin=1.0,
                                       noise_margin=1.0)
    # signal: i=0: d(0,1)=1, d(0,2)=2 -> 0; i=1: d(2,2)=0, d(2,0)=2 -> 0  => 0
    # noise: i=0: a=1, p=3, n=0: 2 - 1 + 1 = 2; i=1: a=3, p=1, n=0: 2 - 3 + 1 = 0  => 1
    assert s.item() == pytest.approx(0.0)
    assert n.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="even number"):
        signal_noise_triplet_losses(signal[:3], noise[:3], negatives, signal_margin=1.0,
                                    noise_margin=1.0)
    # a level without a noise part: the signal term as before, no noise term (not NaN)
    s0, n0 = signal_noise_triplet_losses(signal, noise[:, :0], negatives, signal_margin=1.0,
                                         noise_margin=1.0)
    assert s0.item() == pytest.approx(0.0) and n0.item() == 0.0


def test_normalized_triplet_terms_use_unit_codes_and_ignore_scale():
    signal, noise, negatives, (s_idx, n_idx) = _random_codes(1)
    ours = signal_noise_triplet_losses(signal, noise, negatives, signal_margin=0.7,
                                       noise_margin=0.4, normalize=True)
    unit_s = signal / signal.norm(dim=1, keepdim=True)
    unit_n = noise / noise.norm(dim=1, keepdim=True)
    # the loop divides by sqrt(D): undo it with codes multiplied by sqrt(D)
    assert ours[0].item() == pytest.approx(_loop_triplet(unit_s * math.sqrt(6), s_idx, 0.7),
                                           rel=1e-5)
    assert ours[1].item() == pytest.approx(_loop_triplet(unit_n * math.sqrt(3), n_idx, 0.4),
                                           rel=1e-5)
    inflated = signal_noise_triplet_losses(10 * signal, 10 * noise, negatives, signal_margin=0.7,
                                           noise_margin=0.4, normalize=True)
    torch.testing.assert_close(torch.stack(inflated), torch.stack(ours))
