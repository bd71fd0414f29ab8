"""Annotated confusion-matrix figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

MAX_ANNOTATED_CLASSES = 30  # cell text becomes illegible beyond this


def confusion_matrix_figure(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    class_names: list[str] | None = None,
    title: str,
    normalize: bool = False,
) -> Figure:
    """Image of the confusion matrix (rows = true label, columns = predicted).

    Args:
        y_true: ``[N]`` true labels; y_pred: ``[N]`` predictions.
        class_names: names for labels ``0 .. C-1``; if None, the classes are the sorted union
            of the labels seen in ``y_true`` and ``y_pred``, named by their values.
        title: axes title.
        normalize: divide each row by its count (true-class recall on the diagonal); rows of
            classes absent from ``y_true`` stay 0.

    Returns:
        A ``Figure`` with the matrix axes and a colourbar axes.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D of equal length; got {y_true.shape} and {y_pred.shape}"
        )
    if class_names is None:
        classes = np.unique(np.concatenate([y_true, y_pred]))
        names = [str(c) for c in classes]
    else:
        classes = np.arange(len(class_names))
        names = list(class_names)
        unknown = np.setdiff1d(np.concatenate([y_true, y_pred]), classes)
        if unknown.size:
            raise ValueError(
                f"labels {unknown.tolist()} have no entry in class_names (labels must be "
                f"0..{len(classes) - 1})"
            )
    matrix = confusion_matrix(y_true, y_pred, labels=classes).astype(float)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)

    size = 2.0 + 0.45 * len(classes)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(
        matrix, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None, interpolation="nearest"
    )
    fig.colorbar(image, ax=ax, label="fraction of row" if normalize else "count")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(classes) <= MAX_ANNOTATED_CLASSES:
        threshold = matrix.max() / 2 if matrix.size else 0.0
        for i, j in np.ndindex(matrix.shape):
            text = f"{matrix[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
            colour = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize="small")
    return fig
