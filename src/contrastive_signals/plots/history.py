"""Training curves of several models side by side."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def training_curves_figure(
    histories: Mapping[str, Mapping[str, Sequence[float]]], *, title: str
) -> Figure:
    """One panel per model with its ``train_loss`` and ``val_*`` curves against epoch.

    Curves whose name contains ``loss`` share the left y-axis; other ``val_*`` curves
    (accuracies, recalls) go on a right-hand twin axis because their scale differs. Other
    keys (e.g. ``lr``) are not drawn.

    Args:
        histories: ``{model: {curve: [value per epoch]}}``, e.g. ``FitResult.history``.
        title: figure title.

    Returns:
        A ``Figure`` with one main axes per model (in ``histories`` order, up to three per
        row), each followed by its twin axes when it has non-loss ``val_*`` curves.
    """
    if not histories:
        raise ValueError("histories is empty; nothing to plot")
    n = len(histories)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.5 * ncols, 3.5 * nrows), layout="constrained")
    fig.suptitle(title)
    for position, (model, history) in enumerate(histories.items(), start=1):
        ax = fig.add_subplot(nrows, ncols, position)
        names = [k for k in history if k == "train_loss" or k.startswith("val_")]
        losses = [k for k in names if "loss" in k]
        others = [k for k in names if "loss" not in k]
        lines = []
        for name in losses:
            epochs = np.arange(1, len(history[name]) + 1)
            lines += ax.plot(epochs, history[name], marker=".", label=name)
        if others:
            twin = ax.twinx()
            for name in others:
                epochs = np.arange(1, len(history[name]) + 1)
                lines += twin.plot(epochs, history[name], marker=".", linestyle="--",
                                   color=f"C{len(lines)}", label=name)
            twin.set_ylabel("metric")
        if lines:
            ax.legend(lines, [line.get_label() for line in lines], fontsize="small")
        else:
            ax.text(0.5, 0.5, "no train_loss or val_* curves", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
    return fig
