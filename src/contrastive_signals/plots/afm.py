"""AFM force-curve figures: example curves per class with the detected events marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def example_curves_figure(force: np.ndarray, labels: np.ndarray, events: Sequence[np.ndarray],
                          *, class_names: Sequence[str], per_class: int = 3,
                          predicted: np.ndarray | None = None, title: str = "") -> Figure:
    """A grid of curves: one row per class (the first ``per_class`` curves of it), events
    marked with red triangles.

    Args:
        force: ``[N, L]`` preprocessed force curves.
        labels: ``[N]`` true classes (indices into ``class_names``).
        events: ``N`` arrays of event sample indices (e.g. from ``detect_events``).
        class_names: names of the classes, in label order.
        per_class: curves per row.
        predicted: optional ``[N]`` predicted classes, shown in each panel's title.
        title: figure title.

    Returns:
        A ``Figure`` with ``len(class_names) x per_class`` axes.
    """
    force, labels = np.asarray(force), np.asarray(labels)
    if force.ndim != 2 or labels.shape != (len(force),) or len(events) != len(force):
        raise ValueError(f"need force [N, L], labels [N] and N event arrays; got "
                         f"{force.shape}, {labels.shape} and {len(events)}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1; got {per_class}")
    rows = len(class_names)
    fig = Figure(figsize=(3.2 * per_class, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, per_class, squeeze=False, sharex=True)
    x = np.arange(force.shape[1])
    for row, name in enumerate(class_names):
        members = np.flatnonzero(labels == row)[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            if col >= len(members):
                ax.set_axis_off()
                continue
            i = members[col]
            ax.plot(x, force[i], lw=0.8, color="tab:blue")
            marks = np.asarray(events[i], dtype=int)
            ax.plot(marks, force[i, marks], "v", color="tab:red", ms=6,
                    label=f"{len(marks)} event(s)")
            ax.axhline(0.0, color="grey", lw=0.5)
            text = name if predicted is None else f"{name} -> {class_names[int(predicted[i])]}"
            ax.set_title(text, fontsize="small")
            ax.legend(fontsize="x-small", loc="lower right")
            if col == 0:
                ax.set_ylabel("force (scaled)")
    for ax in axes[-1]:
        ax.set_xlabel("distance (samples)")
    if title:
        fig.suptitle(title)
    return fig
