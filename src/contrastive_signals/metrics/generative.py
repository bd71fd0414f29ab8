"""Sample-quality measures in any feature space: the Fréchet distance (FID's formula on
given features), improved precision and recall (k-NN manifolds, Kynkäänniemi et al. 2019)
and a nearest-training-neighbour memorisation check. Features are ``[N, D]``."""

from __future__ import annotations

import torch
from torch import Tensor


def _sqrtm_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)`` of the Gaussians
    fitted to ``a`` ``[N, D]`` and ``b`` ``[M, D]`` (float64, symmetric square roots)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    value = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross.trace()
    return float(value.clamp(min=0))


def _kth_radius(x: Tensor, k: int) -> Tensor:
    """Distance of each row of ``x`` to its ``k``-th nearest other row ``[N]``."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the row itself at distance 0


def _coverage(points: Tensor, centres: Tensor, radii: Tensor) -> float:
    """Fraction of ``points`` inside at least one ball ``(centres, radii)``."""
    return float((torch.cdist(points, centres) <= radii[None]).any(1).float().mean())


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision (fakes inside the real k-NN manifold) and recall (reals inside the
    fake manifold)."""
    real, fake = real.double(), fake.double()
    return (_coverage(fake, real, _kth_radius(real, k)),
            _coverage(real, fake, _kth_radius(fake, k)))


def nearest_distances(queries: Tensor, reference: Tensor) -> Tensor:
    """Distance of each query ``[N, D]`` to its nearest reference row ``[M, D]`` -> ``[N]``."""
    return torch.cdist(queries.double(), reference.double()).min(1).values


def memorisation_ratio(samples: Tensor, held_out: Tensor, train: Tensor) -> float:
    """median nearest-training distance of samples / that of held-out reals: well below 1
    means samples sit closer to training images than new real images do (copying)."""
    flat = [t.flatten(1) for t in (samples, held_out, train)]
    return float(nearest_distances(flat[0], flat[2]).median()
                 / nearest_distances(flat[1], flat[2]).median())
