"""Conversions of per-epoch training histories for tracking and reporting."""

from __future__ import annotations


def history_as_metric_steps(
    history: dict[str, list[float]], *, prefix: str
) -> dict[str, list[dict[str, float]]]:
    """``{"train_loss": [..]}`` -> ``{"<prefix>.train_loss": [{"value": v, "step": epoch}]}``,
    the shape kedro-mlflow's metrics-history dataset logs as an MLflow metric history."""
    return {
        f"{prefix}.{name}": [{"value": float(v), "step": step} for step, v in enumerate(values)]
        for name, values in history.items()
        if values
    }


def final_metrics_as_steps(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """Flat ``{name: value}`` -> kedro-mlflow's ``{name: {"value": v, "step": 0}}``."""
    return {name: {"value": float(value), "step": 0} for name, value in metrics.items()}
