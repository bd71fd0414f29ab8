"""Label-efficiency plot: a metric against the share of labelled training data, one line per
group (e.g. pretrained vs scratch), mean over seeds with a +-1 std band and the seeds as dots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def label_efficiency_figure(runs: Sequence[dict[str, Any]], *, metrics: Sequence[str],
                            title: str = "") -> Figure:
    """One panel per metric.

    Args:
        runs: ``[{"group": str, "fraction": float, <metric>: float, ...}]``, one per seed and
            condition.
        metrics: the keys to plot.
    """
    if not runs:
        raise ValueError("no runs to plot")
    figure = Figure(figsize=(4.2 * len(metrics), 3.4))
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    groups = sorted({r["group"] for r in runs})
    for ax, metric in zip(axes, metrics, strict=True):
        for i, group in enumerate(groups):
            mine = [r for r in runs if r["group"] == group]
            fractions = sorted({r["fraction"] for r in mine})
            values = [np.array([r[metric] for r in mine if r["fraction"] == f]) for f in fractions]
            mean = np.array([v.mean() for v in values])
            std = np.array([v.std() for v in values])
            x = 100 * np.array(fractions)
            line = ax.plot(x, mean, marker="o", label=group, color=f"C{i}")[0]
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line.get_color())
            for f, v in zip(x, values, strict=True):
                ax.scatter(np.full(len(v), f), v, s=10, color=line.get_color(), alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training recordings (%)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
