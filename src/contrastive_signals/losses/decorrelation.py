"""A feature-decorrelation penalty for representation learning.

Contrastive objectives can be met by representations whose features are largely redundant
(many channels carrying the same few directions): the instance discrimination is solved, but a
downstream classifier sees fewer independent features than the width suggests. Barlow Twins
(Zbontar et al., ICML 2021) and VICReg (Bardes et al., ICLR 2022) push the off-diagonal of a
feature correlation / covariance matrix to zero for this reason. Here the penalty is the
*correlation* form: the mean squared off-diagonal Pearson correlation of the features over the
rows of a batch. It is invariant to each feature's scale and offset, so it does not fight the
unnormalised dot-product similarities of a loss such as TS2Vec's, and it lies in ``[0, 1]``
whatever the width, so one weight suits any representation size.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MIN_VARIANCE = 1e-6  # a constant feature has no correlation; this keeps its gradient finite
# (so the scale invariance holds for features whose standard deviation is above 1e-3)


def _finite_rows(z: Tensor) -> Tensor:
    """``z`` ``[..., D]`` as rows ``[N, D]`` (leading dimensions flattened), without the rows
    that hold a non-finite value; at least 2 rows and 2 features, or a ``ValueError``."""
    if z.ndim < 2 or z.shape[-1] < 2:
        raise ValueError(f"z must be [..., D] with D >= 2 features, got {tuple(z.shape)}")
    rows = z.reshape(-1, z.shape[-1])
    if not torch.isfinite(rows).all():  # one reduction; the copy only where it is needed
        rows = rows[torch.isfinite(rows).all(dim=1)]
    if len(rows) < 2:
        raise ValueError(f"the correlation needs at least 2 finite rows, got {len(rows)} of "
                         f"z {tuple(z.shape)}")
    return rows


def _standardised(rows: Tensor) -> Tensor:
    """``rows`` ``[N, D]`` centred and scaled per feature so that ``out.T @ out`` is the
    correlation matrix."""
    centred = rows - rows.mean(dim=0, keepdim=True)
    variance = centred.square().sum(dim=0) / (len(rows) - 1)
    return centred / (variance.clamp_min(_MIN_VARIANCE) * (len(rows) - 1)).sqrt()


def feature_correlation(z: Tensor) -> Tensor:
    """Pearson correlation matrix ``[D, D]`` of the ``D`` features of ``z`` ``[..., D]`` over all
    its rows (every leading dimension flattened). Rows with a non-finite value are left out."""
    standardised = _standardised(_finite_rows(z))
    return standardised.T @ standardised


def decorrelation_penalty(z: Tensor, *, max_rows: int | None = None) -> Tensor:
    """Mean squared off-diagonal correlation of the features of ``z`` ``[..., D]`` over its rows:
    a scalar in ``[0, 1]``, 0 when the features are uncorrelated, 1 when all are (up to sign)
    the same feature. ``max_rows``: estimate it from every ``k``-th finite row, with the
    smallest ``k`` that leaves at most this many (``None``: every row).

    With ``S`` the ``[N, D]`` standardised rows, the correlation is ``S.T @ S`` and its squared
    entries sum to those of the Gram matrix ``S @ S.T``: the smaller of the two is formed."""
    rows = _finite_rows(z)
    if max_rows is not None:
        if max_rows < 2:
            raise ValueError(f"max_rows must be >= 2, got {max_rows}")
        rows = rows[::-(-len(rows) // max_rows)]  # stride ceil(N / max_rows)
    standardised = _standardised(rows)
    n, d = standardised.shape
    gram = standardised @ standardised.T if n < d else standardised.T @ standardised
    diagonal = standardised.square().sum(dim=0)  # the correlation's diagonal (1 unless constant)
    return (gram.square().sum() - diagonal.square().sum()) / (d * (d - 1))
