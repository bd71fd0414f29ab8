"""Label-efficiency summaries: figures of runs trained on a share of the labels, averaged over
seeds per condition (e.g. pretrained vs scratch initialisation) and share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contrastive_signals.metrics.seeds import mean_and_std


def fraction_name(fraction: float) -> str:
    """0.1 -> ``"10pc"``, 1.0 -> ``"100pc"`` (as in the metric names)."""
    return f"{round(100 * fraction):d}pc"


def summarise_runs(runs: Sequence[dict[str, Any]], *, metrics: Sequence[str], prefix: str
                   ) -> dict[str, float]:
    """Mean and population standard deviation over seeds of each of ``metrics``.

    Args:
        runs: ``[{"init": str, "fraction": float, "recordings": [...], "metrics": {name:
            value}}]``, one per seed and condition.

    Returns:
        ``{"<prefix>.<init>_<NN>pc.<metric>": mean, "....<metric>.std": std,
        "<prefix>.<init>_<NN>pc.n_recordings": labelled items of the first run}``, groups in
        sorted order.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(f"{prefix}.{run['init']}_{fraction_name(run['fraction'])}", []).append(run)
    flat: dict[str, float] = {}
    for name, members in sorted(groups.items()):
        for metric in metrics:
            flat[f"{name}.{metric}"], flat[f"{name}.{metric}.std"] = mean_and_std(
                r["metrics"][metric] for r in members)
        flat[f"{name}.n_recordings"] = float(len(members[0]["recordings"]))
    return flat
