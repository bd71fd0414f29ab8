"""CTC sequence labelling on synthetic sine-segment sequences: fixed evaluation sets, training
on fresh batches, greedy and beam-search CER, plots, report (recipe: ``methods/ctc.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params, require_at_least
from contrastive_signals.data.segment_sequences import SegmentDataParams
from contrastive_signals.methods.ctc import (
    CTCTrainParams,
    DecodingParams,
    SequenceModelParams,
    ctc_test_scores,
    frame_posteriors,
    train_sequence_labeller,
)
from contrastive_signals.metrics.report import flatten_metrics
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.plots.ctc import cer_curves_figure, ctc_emissions_figure
from contrastive_signals.training.history import history_as_metric_steps

MODELS = ("cnn", "bilstm")  # keys under `ctc:`; namespaces ctc_cnn, ctc_bilstm
Sequences = dict[str, dict[str, torch.Tensor]]


@dataclass(frozen=True)
class PlotParams:
    sample: int = 0  # which validation sequence the emissions plot shows

    def __post_init__(self) -> None:
        require_at_least(self, ("sample",), 0)


@dataclass(frozen=True)
class CTCParams:
    """Everything under ``ctc:``; checked as a whole before any training starts."""

    data: SegmentDataParams = field(default_factory=SegmentDataParams)
    cnn: CTCTrainParams = field(default_factory=CTCTrainParams)
    bilstm: CTCTrainParams = field(default_factory=lambda: CTCTrainParams(
        model=SequenceModelParams(architecture="ctc_bilstm")))
    decoding: DecodingParams = field(default_factory=DecodingParams)
    plots: PlotParams = field(default_factory=PlotParams)

    def __post_init__(self) -> None:
        for key in MODELS:
            getattr(self, key).model.check_frames(self.data.spec, name=f"{key}.model")
        if self.plots.sample >= self.data.val_size:
            raise ValueError(f"plots.sample must be < data.val_size ({self.data.val_size}), "
                             f"got {self.plots.sample}")


def make_ctc_sequences(params: dict[str, Any]) -> Sequences:
    """Check every ``ctc`` parameter (a typo fails here, before training); the fixed
    ``{"val": ..., "test": ...}`` sets, each from its own seed."""
    return from_params(CTCParams, params, path="ctc").data.evaluation_sets()


def train_ctc_model(sequences: Sequences, data_params: dict[str, Any], params: dict[str, Any], *,
                    model: str) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """One sequence labeller (``ctc.<model>``): its bundle, history and history for MLflow."""
    data = from_params(SegmentDataParams, data_params, path="ctc.data")
    config = from_params(CTCTrainParams, params, path=f"ctc.{model}")
    bundle, history = train_sequence_labeller(config, data.spec, sequences["val"],
                                              name=f"ctc_{model}")
    return bundle, history, history_as_metric_steps(history, prefix=f"ctc_{model}")


def evaluate_ctc_model(sequences: Sequences, bundle: dict[str, Any], params: dict[str, Any]
                       ) -> dict[str, Any]:
    """``{"metrics": ctc_test_scores(...)}`` of the test set."""
    config = from_params(DecodingParams, params, path="ctc.decoding")
    return {"metrics": ctc_test_scores(from_bundle(bundle), sequences["test"],
                                       beam_width=config.beam_width)}


def plot_ctc_emissions(sequences: Sequences, bundle: dict[str, Any], params: dict[str, Any], *,
                       name: str) -> Figure:
    """Output probabilities over time for one validation sequence, true boundaries marked."""
    sample = from_params(PlotParams, params, path="ctc.plots").sample
    val, model = sequences["val"], from_bundle(bundle)
    probs, decoded = frame_posteriors(model, val["signals"][sample:sample + 1])
    return ctc_emissions_figure(
        val["signals"][sample, 0].numpy(), probs.numpy(), val["frame_labels"][sample].numpy(),
        downsample=model.downsample, decoded=decoded,
        title=f"{name}: output probabilities, validation sequence {sample}")


def plot_ctc_cer_curves(**histories: dict[str, list[float]]) -> Figure:
    """Training/validation CTC loss and validation CER per epoch of every model."""
    return cer_curves_figure(histories, title="CTC on synthetic sequences")


def collect_ctc_metrics(**scores: dict[str, Any]) -> dict[str, float]:
    """``{"ctc_cnn": {"metrics": {"cer": ..}}, ..}`` -> ``{"ctc_cnn.cer": .., ..}``."""
    return flatten_metrics({model: result["metrics"] for model, result in scores.items()})
