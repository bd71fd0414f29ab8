"""2-D t-SNE view of an embedding set, coloured by label."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

MAX_LEGEND_CLASSES = 20  # beyond this a legend is unreadable; use a colourbar instead


def tsne_figure(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    title: str,
    seed: int,
    perplexity: float = 30.0,
    max_iter: int = 1000,
) -> Figure:
    """Scatter of a seeded t-SNE projection of ``embeddings``.

    Args:
        embeddings: ``[N, D]`` floats, ``N >= 3``.
        labels: ``[N]`` class labels (colour).
        title: axes title.
        seed: ``random_state`` of the t-SNE.
        perplexity: lowered to ``N - 1`` when larger, since t-SNE needs it below ``N``.

    Returns:
        A ``Figure`` with one axes (plus a colourbar axes when there are more than
        ``MAX_LEGEND_CLASSES`` classes); one point per row of ``embeddings``.
    """
    embeddings, labels = np.asarray(embeddings, dtype=float), np.asarray(labels)
    if embeddings.ndim != 2 or labels.shape != (len(embeddings),):
        raise ValueError(
            "embeddings must be [N, D] and labels [N] with the same N; got "
            f"{embeddings.shape} and {labels.shape}"
        )
    if len(embeddings) < 3:
        raise ValueError(f"t-SNE needs at least 3 points; got {len(embeddings)}")
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, len(embeddings) - 1),
        init="pca",
        random_state=seed,
        max_iter=max_iter,
    )
    points = tsne.fit_transform(embeddings)

    # Figure, not pyplot: no global state, so it is thread-safe and needs no display.
    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) <= MAX_LEGEND_CLASSES:
        cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, cls in enumerate(classes):
            mask = codes == i
            ax.scatter(points[mask, 0], points[mask, 1], s=8, color=cmap(i), label=str(cls))
        ax.legend(title="label", markerscale=2, fontsize="small", loc="best")
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], s=8, c=codes, cmap="viridis")
        fig.colorbar(scatter, ax=ax, label="label index")
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    return fig
