"""Attention maps of a Vision Transformer over the images they came from."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def attention_figure(
    images: np.ndarray,
    maps: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    columns: int = 8,
    alpha: float = 0.6,
    title: str = "class-token attention, last block",
) -> Figure:
    """A grid of images, each shown plain and with its attention map overlaid.

    Every sample takes two rows of one column: the image (grey), then the image with the map
    (upsampled to the image's extent, nearest patch, ``inferno``) over it. Each map is scaled
    to its own maximum, so the colours show where a digit's attention goes, not how much.

    Args:
        images: ``[N, C, H, W]`` or ``[N, H, W]``; the first channel is shown.
        maps: ``[N, h, w]`` non-negative attention per patch (e.g.
            :meth:`~contrastive_signals.models.vit.VisionTransformer.attention_maps`).
        labels: optional ``[N]`` labels for the titles.
        columns: samples per row of the grid.
        alpha: opacity of the overlaid map, in ``[0, 1]``.
        title: the figure's title.

    Returns:
        A ``Figure`` with ``2 * N`` image axes.
    """
    images, maps = np.asarray(images, dtype=float), np.asarray(maps, dtype=float)
    if images.ndim == 4:
        images = images[:, 0]
    if images.ndim != 3 or maps.ndim != 3 or len(images) != len(maps) or len(images) == 0:
        raise ValueError(f"images must be [N, (C,) H, W] and maps [N, h, w] with the same N >= 1;"
                         f" got {images.shape} and {maps.shape}")
    if labels is not None and np.shape(labels) != (len(images),):
        raise ValueError(f"labels must be [N] = [{len(images)}], got {np.shape(labels)}")
    if columns < 1 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"columns must be >= 1 and alpha in [0, 1]; got {columns}, {alpha}")
    count = len(images)
    columns = min(columns, count)
    rows = -(-count // columns)
    fig = Figure(figsize=(1.3 * columns, 2.6 * rows), layout="constrained")
    grid = fig.add_gridspec(2 * rows, columns)
    height, width = images.shape[1:]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    for i in range(count):
        row, column = divmod(i, columns)
        plain = fig.add_subplot(grid[2 * row, column])
        overlay = fig.add_subplot(grid[2 * row + 1, column])
        for ax in (plain, overlay):
            ax.imshow(images[i], cmap="gray", extent=extent)
            ax.set_axis_off()
        peak = maps[i].max()
        overlay.imshow(maps[i] / peak if peak > 0 else maps[i], cmap="inferno", alpha=alpha,
                       vmin=0.0, vmax=1.0, extent=extent, interpolation="nearest")
        if labels is not None:
            plain.set_title(str(labels[i]), fontsize="small")
    fig.suptitle(title)
    return fig
