"""Fréchet distance, improved precision/recall and the memorisation ratio."""

import numpy as np
import pytest
import scipy.linalg
import torch

from contrastive_signals.metrics.generative import (
    frechet_distance,
    memorisation_ratio,
    precision_recall,
)


def _reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """FID's formula with scipy's general matrix square root (as pytorch-fid computes it)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_of_a_set_with_itself_is_zero():
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fd_matches_scipy_reference_on_random_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8)) + 0.5
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        _reference_fd(a, b), rel=1e-6)


def test_fd_matches_torchmetrics_formula():
    torchmetrics_fid = pytest.importorskip("torchmetrics.image.fid")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) * 1.5 + 0.2
    mu1, mu2 = torch.from_numpy(a.mean(0)), torch.from_numpy(b.mean(0))
    s1, s2 = (torch.from_numpy(np.cov(v, rowvar=False)) for v in (a, b))
    expected = float(torchmetrics_fid._compute_fid(mu1, s1, mu2, s2))
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        expected, rel=1e-5)


def test_fd_has_the_known_answer_for_gaussians():
    # N(0, I) vs N(m, s^2 I) in d dims: FD = |m|^2 + d (1 - s)^2 (large samples)
    generator = torch.Generator().manual_seed(2)
    d, m, s = 4, 0.5, 2.0
    a = torch.randn(200_000, d, generator=generator)
    b = torch.randn(200_000, d, generator=generator) * s + m
    assert frechet_distance(a, b) == pytest.approx(d * m ** 2 + d * (1 - s) ** 2, rel=0.02)


def test_precision_recall_of_identical_and_disjoint_sets():
    generator = torch.Generator().manual_seed(3)
    real = torch.randn(200, 2, generator=generator)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    far = real + 100
    assert precision_recall(real, far) == (0.0, 0.0)
    # a collapsed generator: precise but without recall
    collapsed = real[:1].repeat(200, 1) + 1e-3 * torch.randn(200, 2, generator=generator)
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.2


def test_memorisation_ratio_flags_copies():
    generator = torch.Generator().manual_seed(4)
    train, held_out = torch.randn(100, 10, generator=generator), torch.randn(50, 10,
                                                                            generator=generator)
    assert memorisation_ratio(train[:50] + 1e-3, held_out, train) < 0.01
    fresh = torch.randn(50, 10, generator=generator)
    assert 0.7 < memorisation_ratio(fresh, held_out, train) < 1.4
