"""Pieces shared by the digits training nodes."""

from __future__ import annotations

from typing import Any

import torch

from contrastive_signals.metrics.report import merge_reports
from contrastive_signals.models.registry import to_bundle
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps
from contrastive_signals.training.validation import knn_validation

Features = dict[str, dict[str, torch.Tensor]]


def digits_knn_validation(features: Features):
    """kNN accuracy of the validation digits against the training digits (``None`` when the
    validation split is empty)."""
    train, val = features["train"], features["val"]
    if not len(val["labels"]):
        return None
    return knn_validation(train["images"], train["labels"], val["images"], val["labels"])


def trained_outputs(model: torch.nn.Module, architecture: str, config: dict[str, Any],
                    history: dict[str, list[float]], *, name: str
                    ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """What every digits training node returns: the bundle, the history and the history
    shaped for MLflow."""
    return (to_bundle(model, architecture, config), history,
            history_as_metric_steps(history, prefix=name))


def merged_report(*reports: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """Flat ``{metric: value}`` reports merged into one (a name reported twice is an error),
    as JSON and shaped for MLflow: the report node of the ctc and timeseries pipelines."""
    merged = merge_reports(*reports)
    return merged, final_metrics_as_steps(merged)
