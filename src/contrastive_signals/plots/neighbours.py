"""New images and their nearest training images, one row per query."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def neighbours_figure(queries: np.ndarray, neighbours: np.ndarray, labels: np.ndarray,
                      distances: np.ndarray, *, names: list[str], title: str) -> Figure:
    """Each query image and its ``k`` nearest training images with label and distance.

    Args:
        queries: ``[N, H, W]``; neighbours: ``[N, k, H, W]``; labels, distances: ``[N, k]``;
        names: ``N`` captions of the queries.
    """
    n, k = labels.shape
    fig = Figure(figsize=(1.3 * (k + 1), 1.4 * n + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(n, k + 1, squeeze=False))
    for i in range(n):
        axes[i, 0].imshow(queries[i], cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(names[i], fontsize=7)
        for j in range(k):
            axes[i, j + 1].imshow(neighbours[i, j], cmap="gray", vmin=0, vmax=1)
            axes[i, j + 1].set_title(f"{labels[i, j]} ({distances[i, j]:.3f})", fontsize=7)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(title)
    return fig
