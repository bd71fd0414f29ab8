"""Classification figures by class name: per-class F1, macro-F1 and accuracy, and the flat
report of a family of classifiers (a headline model, baselines and ablation variants)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import f1_score


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray,
                          class_names: Sequence[str]) -> dict[str, float]:
    """``{"<class>.f1": ..., "macro_f1": ..., "accuracy": ...}`` of predictions ``[N]``
    against labels ``[N]`` (indices into ``class_names``); a class absent from both counts
    with F1 0 in the macro average."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.arange(len(class_names))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    scores = {f"{name}.f1": float(v) for name, v in zip(class_names, per_class, strict=True)}
    scores["macro_f1"] = float(np.mean(per_class))
    scores["accuracy"] = float(np.mean(y_true == y_pred))
    return scores


def ablation_report(prefix: str, *, headline: Mapping[str, float],
                    baselines: Mapping[str, Mapping[str, float]],
                    variants: Mapping[str, Mapping[str, float]],
                    variant_figures: Sequence[str], counts: Mapping[str, float]
                    ) -> dict[str, float]:
    """One flat, sorted report: ``<prefix>.<figure>`` for the headline model's scores,
    ``<prefix>.<baseline>.<figure>`` for every baseline score, ``<prefix>.<variant>.<figure>``
    for ``variant_figures`` of each variant, and ``<prefix>.<count>`` for ``counts``."""
    metrics = {f"{prefix}.{k}": v for k, v in headline.items()}
    for name, scores in baselines.items():
        metrics.update({f"{prefix}.{name}.{k}": v for k, v in scores.items()})
    for variant, scores in variants.items():
        metrics.update({f"{prefix}.{variant}.{k}": scores[k] for k in variant_figures})
    metrics.update({f"{prefix}.{k}": v for k, v in counts.items()})
    return {k: float(v) for k, v in sorted(metrics.items())}
