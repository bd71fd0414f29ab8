"""One figure with a seeded t-SNE panel per dataset (time-series embeddings)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from sklearn.manifold import TSNE


def tsne_panels_figure(panels: dict[str, tuple[np.ndarray, np.ndarray]], *, seed: int,
                       perplexity: float = 30.0, max_iter: int = 500,
                       title: str = "") -> Figure:
    """t-SNE scatter per entry of ``panels`` ``{name: (embeddings [N, D], labels [N])}``,
    coloured by label, laid out in a grid of up to 3 columns.

    Raises:
        ValueError: for no panels, mismatched shapes or fewer than 3 points in a panel.
    """
    if not panels:
        raise ValueError("panels is empty: nothing to plot")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.8 * rows), layout="constrained")
    for k, (name, (embeddings, labels)) in enumerate(panels.items()):
        embeddings, labels = np.asarray(embeddings, dtype=float), np.asarray(labels)
        if embeddings.ndim != 2 or labels.shape != (len(embeddings),):
            raise ValueError(f"{name}: embeddings must be [N, D] and labels [N]; got "
                             f"{embeddings.shape} and {labels.shape}")
        if len(embeddings) < 3:
            raise ValueError(f"{name}: t-SNE needs at least 3 points; got {len(embeddings)}")
        points = TSNE(n_components=2, perplexity=min(perplexity, len(embeddings) - 1),
                      init="pca", random_state=seed, max_iter=max_iter).fit_transform(embeddings)
        ax = fig.add_subplot(rows, columns, k + 1)
        classes, codes = np.unique(labels, return_inverse=True)
        cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        ax.scatter(points[:, 0], points[:, 1], s=6, c=[cmap(c % cmap.N) for c in codes])
        ax.set_title(f"{name} ({len(classes)} classes)")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig
