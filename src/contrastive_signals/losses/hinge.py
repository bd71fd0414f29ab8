"""The multi-class hinge loss, in Weston and Watkins' (1999) and Crammer and Singer's (2001)
forms.

For logits ``s`` ``[K]`` of one sample with true class ``y`` and margin ``m``:

- Weston-Watkins: ``sum_{j != y} max(0, m - (s_y - s_j))``: every wrong class within the margin
  of the true one is penalised.
- Crammer-Singer: ``max(0, m - (s_y - max_{j != y} s_j))``: only the strongest wrong class.

``torch.nn.MultiMarginLoss(margin=m)`` is the Weston-Watkins form divided by ``K``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

KINDS = ("weston_watkins", "crammer_singer")
REDUCTIONS = ("mean", "sum", "none")


def _check_inputs(logits: Tensor, labels: Tensor, margin: float, kind: str,
                  reduction: str) -> None:
    if logits.ndim != 2 or logits.shape[1] < 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be floating point [B, K] with K >= 2, got "
                         f"{tuple(logits.shape)} {logits.dtype}")
    if labels.shape != logits.shape[:1] or labels.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"labels must be integer [B] = [{logits.shape[0]}], got "
                         f"{tuple(labels.shape)} {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got '{kind}'")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got '{reduction}'")
    if reduction == "mean" and len(labels) == 0:
        raise ValueError("the mean loss of an empty batch is undefined (B = 0)")


def multiclass_hinge_loss(logits: Tensor, labels: Tensor, *, margin: float = 1.0,
                          kind: str = "weston_watkins", reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss of class scores.

    Args:
        logits: ``[B, K]`` class scores (any real values), ``K >= 2``.
        labels: ``[B]`` integer true classes in ``[0, K)``.
        margin: the required gap ``m >= 0`` between the true score and the others.
        kind: ``"weston_watkins"`` (sum over wrong classes) or ``"crammer_singer"`` (the
            strongest wrong class); formulas in the module docstring.
        reduction: ``"mean"`` over the batch, ``"sum"``, or ``"none"`` (``[B]``).

    Returns:
        A scalar, or ``[B]`` per-sample losses with ``reduction="none"``.
    """
    _check_inputs(logits, labels, margin, kind, reduction)
    true = logits.gather(1, labels.long().unsqueeze(1))  # [B, 1]
    wrong = torch.ones_like(logits, dtype=torch.bool).scatter_(1, labels.long().unsqueeze(1),
                                                               False)
    violations = margin - true + logits  # [B, K], margin - (s_y - s_j)
    if kind == "weston_watkins":
        per_sample = (violations.clamp(min=0) * wrong).sum(dim=1)
    else:
        strongest = violations.masked_fill(~wrong, float("-inf")).amax(dim=1)
        per_sample = strongest.clamp(min=0)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()
