"""CTC sequence labelling on synthetic sine-segment sequences: fixed validation and test
sets, training (a fresh random batch every step), greedy and beam-search CER, plots, report."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from contrastive_signals.config import from_params, require_at_least
from contrastive_signals.data.segment_sequences import (
    SegmentSequenceSpec,
    make_segment_sequences,
    target_sequences,
)
from contrastive_signals.metrics.cer import corpus_edit_counts
from contrastive_signals.metrics.ctc_decoding import beam_search_decode, greedy_decode
from contrastive_signals.metrics.report import flatten_metrics
from contrastive_signals.models.registry import build_model, from_bundle, to_bundle
from contrastive_signals.models.sequence import sequence_log_probs
from contrastive_signals.plots.ctc import cer_curves_figure, ctc_emissions_figure
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import FitConfig, fit
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

SEQUENCE_ARCHITECTURES = ("ctc_cnn", "ctc_bilstm")
MODELS = ("cnn", "bilstm")  # keys under `ctc:`; namespaces ctc_cnn, ctc_bilstm


@dataclass(frozen=True)
class CTCDataParams:
    """Generator settings (see ``SegmentSequenceSpec``) and the fixed evaluation sets."""

    sequence_length: int = 400
    min_segment: int = 40
    max_segment: int = 120
    frequencies: tuple[float, ...] = (0.1, 0.2, 0.3)
    noise_std: float = 1.0
    amplitude: float = 1.0
    val_size: int = 200
    test_size: int = 500
    val_seed: int = 1
    test_seed: int = 2

    def __post_init__(self) -> None:
        require_at_least(self, ("val_size", "test_size"), 1)
        self.spec  # noqa: B018 - the spec validates lengths, frequencies and noise

    @property
    def spec(self) -> SegmentSequenceSpec:
        return SegmentSequenceSpec(
            length=self.sequence_length, min_segment=self.min_segment,
            max_segment=self.max_segment, frequencies=tuple(self.frequencies),
            noise_std=self.noise_std, amplitude=self.amplitude)


@dataclass(frozen=True)
class SequenceModelParams:
    """Which sequence labeller to build; ``num_layers`` is the CNN's, ``hidden_size`` the
    BiLSTM's (LSTM units per direction)."""

    architecture: str = "ctc_cnn"
    channels: int = 32
    kernel_size: int = 9
    downsample: int = 8
    num_layers: int = 4
    hidden_size: int = 64

    def __post_init__(self) -> None:
        if self.architecture not in SEQUENCE_ARCHITECTURES:
            raise ValueError(f"architecture must be one of {SEQUENCE_ARCHITECTURES}, got "
                             f"'{self.architecture}'")
        # Building the (small) model checks channels, kernel and downsampling; build_model
        # leaves the global random state alone.
        build_model(self.architecture, self.model_config(in_channels=1, num_classes=2), seed=0)

    def model_config(self, *, in_channels: int, num_classes: int) -> dict[str, Any]:
        config = {"in_channels": in_channels, "num_classes": num_classes,
                  "channels": self.channels, "kernel_size": self.kernel_size,
                  "downsample": self.downsample}
        if self.architecture == "ctc_cnn":
            config["num_layers"] = self.num_layers
        else:
            config["hidden_size"] = self.hidden_size
        return config


@dataclass(frozen=True)
class CTCTrainParams:
    """One model's settings; an "epoch" is ``steps_per_epoch`` freshly generated batches.
    ``num_threads``: CPU threads while training (None: as the run set them)."""

    model: SequenceModelParams = field(default_factory=SequenceModelParams)
    batch_size: int = 32
    steps_per_epoch: int = 50
    num_threads: int | None = None
    fit: FitConfig = field(default_factory=lambda: FitConfig(
        epochs=1, learning_rate=3e-3, monitor="val_cer"))

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")
        if self.fit.monitor not in ("val_cer", "val_loss"):
            raise ValueError(f"fit.monitor must be 'val_cer' or 'val_loss', got '{self.fit.monitor}'")


@dataclass(frozen=True)
class DecodingParams:
    beam_width: int = 8

    def __post_init__(self) -> None:
        if self.beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {self.beam_width}")


@dataclass(frozen=True)
class PlotParams:
    sample: int = 0  # which validation sequence the emissions plot shows

    def __post_init__(self) -> None:
        if self.sample < 0:
            raise ValueError(f"sample must be >= 0, got {self.sample}")


@dataclass(frozen=True)
class CTCParams:
    """Everything under ``ctc:``; checked as a whole before any training starts."""

    data: CTCDataParams = field(default_factory=CTCDataParams)
    cnn: CTCTrainParams = field(default_factory=CTCTrainParams)
    bilstm: CTCTrainParams = field(default_factory=lambda: CTCTrainParams(
        model=SequenceModelParams(architecture="ctc_bilstm")))
    decoding: DecodingParams = field(default_factory=DecodingParams)
    plots: PlotParams = field(default_factory=PlotParams)

    def __post_init__(self) -> None:
        spec = self.data.spec
        for key in MODELS:
            model = getattr(self, key).model
            frames = -(-spec.length // model.downsample)
            if frames < spec.max_segments:
                raise ValueError(
                    f"{key}.model.downsample={model.downsample} leaves {frames} output frames "
                    f"for up to {spec.max_segments} segments (data.sequence_length / "
                    f"data.min_segment); CTC needs at least one frame per label")
        if self.plots.sample >= self.data.val_size:
            raise ValueError(f"plots.sample must be < data.val_size ({self.data.val_size}), "
                             f"got {self.plots.sample}")


def _ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor
              ) -> torch.Tensor:
    """Mean CTC loss of equal-length outputs ``[T', B, K + 1]``; blank = 0."""
    input_lengths = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long,
                               device=log_probs.device)
    return F.ctc_loss(log_probs.float(), targets, input_lengths, target_lengths, blank=0,
                      zero_infinity=True)


def _greedy_cer_on(data: dict[str, torch.Tensor]):
    """``validate`` callback for ``fit``: CTC loss and greedy-decoding CER on a fixed set."""
    references = target_sequences(data["targets"], data["target_lengths"])

    def validate(model) -> dict[str, float]:
        log_probs = sequence_log_probs(model, data["signals"])
        loss = _ctc_loss(log_probs, data["targets"], data["target_lengths"]).item()
        return {"val_loss": loss,
                "val_cer": corpus_edit_counts(references, greedy_decode(log_probs)).cer}

    return validate


def make_ctc_sequences(params: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """Check every ``ctc`` parameter (so a typo fails here, before training) and draw the
    fixed validation and test sets from their own seeds.

    Returns:
        ``{"val": ..., "test": ...}``, each as ``make_segment_sequences`` returns it.
    """
    config = from_params(CTCParams, params, path="ctc").data
    return {part: make_segment_sequences(size, spec=config.spec,
                                         generator=torch.Generator().manual_seed(seed))
            for part, size, seed in (("val", config.val_size, config.val_seed),
                                     ("test", config.test_size, config.test_seed))}


def train_ctc_model(
    sequences: dict[str, dict[str, torch.Tensor]], data_params: dict[str, Any],
    params: dict[str, Any], *, model: str,
) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train one sequence labeller with the CTC loss on freshly generated batches (drawn
    from the fit loop's seeded generator); validation CER is tracked each epoch.

    Returns:
        the model bundle, its per-epoch history and that history shaped for MLflow.
    """
    name = f"ctc_{model}"
    data = from_params(CTCDataParams, data_params, path="ctc.data")
    config = from_params(CTCTrainParams, params, path=f"ctc.{model}")
    spec = data.spec
    seed_everything(config.fit.seed)
    model_config = config.model.model_config(in_channels=1, num_classes=spec.num_classes)
    network = build_model(config.model.architecture, model_config, seed=config.fit.seed)

    def batches(epoch: int, generator: torch.Generator):
        for _ in range(config.steps_per_epoch):
            batch = make_segment_sequences(config.batch_size, spec=spec, generator=generator)
            yield batch["signals"], batch["targets"], batch["target_lengths"]

    def loss_fn(net, batch, generator):
        signals, targets, target_lengths = batch
        return _ctc_loss(net(signals), targets, target_lengths)

    with torch_threads(config.num_threads):
        result = fit(network, loss_fn=loss_fn, batches=batches,
                     config=replace(config.fit, name=name), validate=_greedy_cer_on(sequences["val"]))
    bundle = to_bundle(result.model, config.model.architecture, model_config)
    return bundle, result.history, history_as_metric_steps(result.history, prefix=name)


def evaluate_ctc_model(sequences: dict[str, dict[str, torch.Tensor]], bundle: dict[str, Any],
                       params: dict[str, Any]) -> dict[str, Any]:
    """Test-set character error rates of greedy (best path) and prefix beam search decoding.

    Returns:
        ``{"metrics": {"cer", "cer_beam", "substitutions", "deletions", "insertions"}}``
        (the counts are the greedy decoding's edits over all test sequences).
    """
    config = from_params(DecodingParams, params, path="ctc.decoding")
    test = sequences["test"]
    references = target_sequences(test["targets"], test["target_lengths"])
    log_probs = sequence_log_probs(from_bundle(bundle), test["signals"])
    greedy = corpus_edit_counts(references, greedy_decode(log_probs))
    beam = corpus_edit_counts(references, beam_search_decode(log_probs,
                                                             beam_width=config.beam_width))
    return {"metrics": {"cer": greedy.cer, "cer_beam": beam.cer,
                        "substitutions": greedy.substitutions, "deletions": greedy.deletions,
                        "insertions": greedy.insertions}}


def plot_ctc_emissions(sequences: dict[str, dict[str, torch.Tensor]], bundle: dict[str, Any],
                       params: dict[str, Any], *, name: str) -> Figure:
    """Output probabilities over time for one validation sequence, true boundaries marked."""
    config = from_params(PlotParams, params, path="ctc.plots")
    val = sequences["val"]
    model = from_bundle(bundle)
    log_probs = sequence_log_probs(model, val["signals"][config.sample:config.sample + 1])
    return ctc_emissions_figure(
        val["signals"][config.sample, 0].numpy(), log_probs[:, 0].exp().numpy(),
        val["frame_labels"][config.sample].numpy(), downsample=model.downsample,
        title=f"{name}: output probabilities, validation sequence {config.sample}",
        decoded=greedy_decode(log_probs)[0])


def plot_ctc_cer_curves(**histories: dict[str, list[float]]) -> Figure:
    """Training/validation CTC loss and validation CER per epoch of every model."""
    return cer_curves_figure(histories, title="CTC on synthetic sequences")


def collect_ctc_metrics(**scores: dict[str, Any]) -> dict[str, float]:
    """``{"ctc_cnn": {"metrics": {"cer": ..}}, ..}`` -> ``{"ctc_cnn.cer": .., ..}``."""
    return flatten_metrics({model: result["metrics"] for model, result in scores.items()})


def write_ctc_report(*reports: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """Merge flat metric dicts (synthetic CTC, and any further CTC report) into the one
    ``ctc_metrics`` report.

    Returns:
        the merged ``{name: value}`` (JSON) and the same shaped for MLflow.

    Raises:
        ValueError: when two reports name the same metric.
    """
    merged: dict[str, float] = {}
    for report in reports:
        clashes = sorted(set(merged) & set(report))
        if clashes:
            raise ValueError(f"metric names reported twice: {clashes}")
        merged.update({name: float(value) for name, value in report.items()})
    return merged, final_metrics_as_steps(merged)
