"""Figures for CTC sequence labelling, after the classic ones in Graves et al. (2006): the
network's per-frame output probabilities over time against the true segment boundaries
(CTC's outputs are spikes, one per label, separated by long stretches of blank), and error
rate curves over training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _boundaries(frame_labels: np.ndarray) -> np.ndarray:
    return np.flatnonzero(frame_labels[1:] != frame_labels[:-1]) + 1


def ctc_emissions_figure(
    signal: np.ndarray,
    probabilities: np.ndarray,
    frame_labels: np.ndarray,
    *,
    downsample: int,
    title: str,
    decoded: Sequence[int] | None = None,
) -> Figure:
    """Two stacked panels sharing the time axis (in input samples).

    Top: the input signal, dashed lines at the true segment boundaries and each segment's
    class written above it. Bottom: the output probability of every class and of the blank
    (grey, dashed) per output frame, with the same boundaries.

    Args:
        signal: ``[L]`` input samples.
        probabilities: ``[T', K + 1]`` per-frame output probabilities, column 0 the blank;
            frame ``t`` covers samples ``t * downsample .. (t + 1) * downsample - 1``.
        frame_labels: ``[L]`` true class (1..K) of every sample.
        downsample: input samples per output frame.
        title: figure title.
        decoded: the decoded labelling, shown in the title next to the reference.
    """
    signal, probabilities = np.asarray(signal, float), np.asarray(probabilities, float)
    frame_labels = np.asarray(frame_labels)
    if signal.ndim != 1 or frame_labels.shape != signal.shape:
        raise ValueError(f"signal and frame_labels must be [L]; got {signal.shape} and "
                         f"{frame_labels.shape}")
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must be [T', K + 1]; got {probabilities.shape}")
    boundaries = _boundaries(frame_labels)
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(signal)]])
    reference = frame_labels[starts].tolist()

    fig = Figure(figsize=(10, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.3])
    top.plot(np.arange(len(signal)), signal, color="black", linewidth=0.7)
    for start, end, label in zip(starts, ends, reference, strict=True):
        top.text((start + end) / 2, 1.02, str(label), transform=top.get_xaxis_transform(),
                 ha="center", va="bottom", color=f"C{label}", fontweight="bold")
    top.set_ylabel("signal")

    centres = (np.arange(len(probabilities)) + 0.5) * downsample
    bottom.plot(centres, probabilities[:, 0], color="grey", linestyle="--", label="blank")
    for k in range(1, probabilities.shape[1]):
        bottom.plot(centres, probabilities[:, k], color=f"C{k}", label=f"class {k}")
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_ylabel("output probability")
    bottom.set_xlabel("time (input samples)")
    bottom.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    for ax in (top, bottom):
        for boundary in boundaries:
            ax.axvline(boundary, color="black", linestyle=":", linewidth=0.8)
        ax.set_xlim(0, len(signal))
    text = f"reference {' '.join(map(str, reference))}"
    if decoded is not None:
        text += f"   decoded {' '.join(map(str, decoded)) or '(empty)'}"
    fig.suptitle(f"{title}\n{text}")
    return fig


def cer_curves_figure(histories: Mapping[str, Mapping[str, Sequence[float]]], *, title: str
                      ) -> Figure:
    """Left: CTC training loss (solid) and validation loss (dashed) per model, log scale.
    Right: validation character error rate per model (symlog scale), both against epoch.

    Args:
        histories: ``{model: {"train_loss": [...], "val_loss": [...], "val_cer": [...]}}``
            (``FitResult.history``); missing curves are skipped.
    """
    if not histories:
        raise ValueError("histories is empty; nothing to plot")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    losses, errors = fig.subplots(1, 2)
    for index, (model, history) in enumerate(histories.items()):
        colour = f"C{index}"
        for name, style in (("train_loss", "-"), ("val_loss", "--")):
            values = history.get(name) or []
            if values:
                losses.plot(np.arange(1, len(values) + 1), values, style, color=colour,
                            marker=".", label=f"{model} {name}")
        cer = history.get("val_cer") or []
        if cer:
            errors.plot(np.arange(1, len(cer) + 1), cer, color=colour, marker=".", label=model)
    losses.set_yscale("log")
    losses.set_ylabel("CTC loss")
    # Linear near 0 (a CER of 0 is common), logarithmic above 1%: the first epochs on the
    # all-blank plateau (CER near 1) would otherwise flatten the rest of the curve.
    errors.set_yscale("symlog", linthresh=0.01)
    errors.set_ylim(bottom=0)
    errors.set_ylabel("validation CER (greedy)")
    for ax in (losses, errors):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(title)
    return fig
