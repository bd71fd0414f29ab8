"""The swap figure: one row per image, one column per stage (noisy, reconstructions, swaps);
and the latent-part figure: the streaks beside what each part of the latent adds."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def swap_figure(columns: dict[str, np.ndarray], *, title: str,
                signed: tuple[str, ...] = ()) -> Figure:
    """Grid of grey images; ``columns`` maps a column title to ``[K, N, N]`` (all equal ``K``).

    Every panel shares the grey scale [0, 1] of the clean images, so streaks show as they are;
    the ``signed`` columns (differences) share one blue-white-red scale, symmetric about 0.
    """
    if not columns:
        raise ValueError("no columns to plot")
    rows = {np.asarray(c).shape[0] for c in columns.values()}
    if len(rows) != 1:
        raise ValueError(f"columns hold different numbers of images: {sorted(rows)}")
    unknown = sorted(set(signed) - set(columns))
    if unknown:
        raise ValueError(f"signed columns {unknown} are not among {sorted(columns)}")
    n_rows, n_cols = rows.pop(), len(columns)
    bound = max((float(np.abs(np.asarray(columns[c])).max()) for c in signed), default=1.0)
    figure = Figure(figsize=(1.6 * n_cols, 1.6 * n_rows + 0.5), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for j, (name, images) in enumerate(columns.items()):
        for i in range(n_rows):
            ax = axes[i, j]
            if name in signed:
                ax.imshow(np.asarray(images[i]), cmap="RdBu_r", vmin=-bound, vmax=bound)
            else:
                ax.imshow(np.asarray(images[i]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
    figure.suptitle(title, fontsize=10)
    return figure
