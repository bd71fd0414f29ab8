"""``validate`` callbacks for :func:`~contrastive_signals.training.fit.fit`: cheap per-epoch
monitors (kNN accuracy of the embedding, classification loss and scores)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.models.registry import embed

ValidateFn = Callable[[nn.Module], dict[str, float]]


def knn_validation(x_ref: Tensor, y_ref: Tensor, x_val: Tensor, y_val: Tensor, *,
                   k: int = 5) -> ValidateFn:
    """Cosine kNN accuracy (``val_knn_acc``) of the validation inputs ``x_val`` ``[M, ...]``
    against reference inputs ``x_ref`` ``[N, ...]`` in the model's current embedding
    (``model.embed`` when it has one): a cheap proxy for probe quality."""

    def validate(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        ref = F.normalize(embed(model, x_ref, device=device), dim=1)
        val = F.normalize(embed(model, x_val, device=device), dim=1)
        neighbours = (val @ ref.T).topk(min(k, len(ref)), dim=1).indices
        predicted = torch.mode(y_ref[neighbours], dim=1).values
        return {"val_knn_acc": (predicted == y_val).float().mean().item()}

    return validate


def classification_validation(
    x_val: Tensor, y_val: Tensor, *,
    scores: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
    batch_size: int = 512,
) -> ValidateFn:
    """``val_loss`` (cross-entropy of the logits ``model(x)``) plus ``val_<name>`` for each of
    ``scores(y_true, y_pred)`` (default: ``acc``), on ``x_val`` ``[M, ...]`` in batches."""

    def validate(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        logits = torch.cat([model(x_val[i:i + batch_size].to(device)).float().cpu()
                            for i in range(0, len(x_val), batch_size)])
        predicted = logits.argmax(1)
        values = ({"acc": (predicted == y_val).float().mean().item()} if scores is None
                  else scores(y_val.numpy(), predicted.numpy()))
        return {"val_loss": F.cross_entropy(logits, y_val).item(),
                **{f"val_{name}": value for name, value in values.items()}}

    return validate
