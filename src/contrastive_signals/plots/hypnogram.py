"""True and predicted hypnograms of one recording, one above the other."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

# Clinical convention: wake on top, REM next (drawn in red), then lighter to deeper sleep.
DISPLAY_ORDER = ("W", "REM", "N1", "N2", "N3")


def hypnogram_figure(true_labels: np.ndarray, predicted_labels: np.ndarray, *,
                     stage_names: Sequence[str], title: str, epoch_seconds: float = 30.0,
                     epoch_index: np.ndarray | None = None) -> Figure:
    """Step plots of the true and the predicted stage of every epoch against time.

    Args:
        true_labels, predicted_labels: ``[N]`` stage indices into ``stage_names``.
        stage_names: e.g. ``("W", "N1", "N2", "N3", "REM")``.
        title: figure title.
        epoch_seconds: epoch length (x axis in hours).
        epoch_index: ``[N]`` position of each epoch in the recording (gaps where epochs were
            dropped); default ``0 .. N-1``.

    Returns:
        A ``Figure`` with two axes sharing the time axis (true on top).
    """
    true_labels, predicted_labels = np.asarray(true_labels), np.asarray(predicted_labels)
    if true_labels.shape != predicted_labels.shape or true_labels.ndim != 1:
        raise ValueError(f"labels must be 1-D of equal length; got {true_labels.shape} and "
                         f"{predicted_labels.shape}")
    names = list(stage_names)
    order = [n for n in DISPLAY_ORDER if n in names] + [n for n in names if n not in DISPLAY_ORDER]
    row = {names.index(n): len(order) - 1 - i for i, n in enumerate(order)}  # top = first
    index = np.arange(len(true_labels)) if epoch_index is None else np.asarray(epoch_index)
    hours = index * epoch_seconds / 3600.0
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    agreement = float(np.mean(true_labels == predicted_labels)) if len(true_labels) else float("nan")
    for ax, labels, name in ((axes[0], true_labels, "true"),
                             (axes[1], predicted_labels, f"predicted (agreement {agreement:.1%})")):
        y = np.array([row[int(v)] for v in labels], dtype=float)
        ax.step(hours, y, where="post", color="0.2", linewidth=0.9)
        if "REM" in names:
            rem = np.where(labels == names.index("REM"), y, np.nan)
            ax.step(hours, rem, where="post", color="tab:red", linewidth=2.5)
        ax.set_yticks(range(len(order)), labels=list(reversed(order)))
        ax.set_ylim(-0.5, len(order) - 0.5)
        ax.set_ylabel(name)
        ax.grid(axis="x", alpha=0.3)
    axes[1].set_xlabel("time (hours from the first kept epoch)")
    fig.suptitle(title)
    return fig


def predicted_hypnogram_figure(predicted_labels: np.ndarray, probabilities: np.ndarray, *,
                               stage_names: Sequence[str], title: str,
                               epoch_seconds: float = 30.0) -> Figure:
    """A night staged without a hypnogram: the predicted stage of every epoch (top) and the
    stage probabilities stacked (bottom).

    Args:
        predicted_labels: ``[N]`` stage indices into ``stage_names``.
        probabilities: ``[N, K]``.
    """
    names = list(stage_names)
    order = [n for n in DISPLAY_ORDER if n in names] + [n for n in names if n not in DISPLAY_ORDER]
    row = {names.index(n): len(order) - 1 - i for i, n in enumerate(order)}
    labels = np.asarray(predicted_labels)
    hours = np.arange(len(labels)) * epoch_seconds / 3600.0
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.step(hours, [row[int(v)] for v in labels], where="post", color="0.2", linewidth=0.9)
    top.set_yticks(range(len(order)), labels=list(reversed(order)))
    top.set_ylabel("predicted stage")
    bottom.stackplot(hours, np.asarray(probabilities).T, labels=names, step="post")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("probability")
    bottom.legend(loc="upper right", ncols=len(names), fontsize="small")
    bottom.set_xlabel("time (hours from the start of the recording)")
    fig.suptitle(title)
    return fig
