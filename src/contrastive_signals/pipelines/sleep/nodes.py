"""Sleep staging from EDF+: synthetic recordings, epochs, subject split, a CNN + BiLSTM
stager with a CTC and a per-epoch head, and its evaluation on held-out subjects."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.metrics import cohen_kappa_score

from contrastive_signals.config import from_params, require_at_least
from contrastive_signals.data.sleep_edf import (
    EPOCH_SECONDS,
    STAGES,
    recording_epochs,
    subject_split,
)
from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
from contrastive_signals.metrics.ctc_decoding import beam_search_decode, greedy_decode
from contrastive_signals.metrics.sleep import count_transitions, sleep_staging_metrics
from contrastive_signals.models.registry import build_model, from_bundle, to_bundle
from contrastive_signals.models.sleep import (
    BLANK,
    collapse_repeats,
    joint_loss,
    load_encoder_features,
    predict_recording,
    window_starts,
)
from contrastive_signals.plots.confusion import confusion_matrix_figure
from contrastive_signals.plots.hypnogram import hypnogram_figure
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import FitConfig, fit
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

logger = logging.getLogger(__name__)

NORMALIZATIONS = ("robust", "std", "none")
DECODERS = ("greedy", "beam")


@dataclass(frozen=True)
class SplitParams:
    val_subjects: int = 1
    test_subjects: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.val_subjects < 0 or self.test_subjects < 1:
            raise ValueError(f"need val_subjects >= 0 and test_subjects >= 1, got "
                             f"{self.val_subjects} and {self.test_subjects}")


@dataclass(frozen=True)
class IngestionParams:
    """Preprocessing of every recording (channels and kept wake are reader settings in
    ``conf/base/catalog_sleep.yml``)."""

    low_hz: float = 0.3
    high_hz: float = 35.0
    filter_order: int = 4
    target_hz: float = 100.0
    normalize: str = "robust"
    clip: float | None = 20.0
    split: SplitParams = field(default_factory=SplitParams)

    def __post_init__(self) -> None:
        if not 0 < self.low_hz < self.high_hz:
            raise ValueError(f"need 0 < low_hz < high_hz, got {self.low_hz}, {self.high_hz}")
        if self.high_hz >= self.target_hz / 2:
            raise ValueError(f"high_hz ({self.high_hz}) must lie below the Nyquist frequency of "
                             f"target_hz ({self.target_hz / 2})")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got '{self.normalize}'")
        if self.clip is not None and self.clip <= 0:
            raise ValueError(f"clip must be > 0 or null, got {self.clip}")
        if self.filter_order < 1:
            raise ValueError(f"filter_order must be >= 1, got {self.filter_order}")


@dataclass(frozen=True)
class StagerParams:
    base_channels: int = 16
    embedding_dim: int = 64
    hidden_dim: int = 64
    lstm_layers: int = 1
    dropout: float = 0.2

    def __post_init__(self) -> None:
        require_at_least(self, ("base_channels", "embedding_dim", "hidden_dim", "lstm_layers"), 1)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TrainingParams:
    window: int = 30           # consecutive epochs the BiLSTM reads (15 minutes)
    batch_size: int = 8        # windows per batch
    ce_weight: float = 1.0
    ctc_weight: float = 0.25
    label_smoothing: float = 0.0
    val_stride: int = 10       # window stride when predicting validation nights
    num_threads: int | None = None  # CPU threads while training; None: as the run set them
    model: StagerParams = field(default_factory=StagerParams)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2, got {self.window}")
        if self.batch_size < 1 or self.val_stride < 1:
            raise ValueError(f"batch_size and val_stride must be >= 1, got {self.batch_size}, "
                             f"{self.val_stride}")
        if self.ce_weight < 0 or self.ctc_weight < 0 or self.ce_weight + self.ctc_weight == 0:
            raise ValueError(f"ce_weight and ctc_weight must be >= 0 and not both 0, got "
                             f"{self.ce_weight}, {self.ctc_weight}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")


@dataclass(frozen=True)
class SleepEvaluationParams:
    stride: int = 10           # window stride for per-epoch predictions (overlaps averaged)
    decoder: str = "greedy"    # CTC decoding: greedy | beam (prefix beam search)
    beam_width: int = 8
    batch_size: int = 16
    plot_recording: int = 0    # which test recording the hypnogram plot shows
    num_threads: int | None = None  # CPU threads while predicting; None: as the run set them

    def __post_init__(self) -> None:
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got '{self.decoder}'")
        require_at_least(self, ("stride", "beam_width", "batch_size"), 1)
        if self.plot_recording < 0:
            raise ValueError(f"plot_recording must be >= 0, got {self.plot_recording}")


# ------------------------------------------------------------------------ ingestion


def generate_synthetic_sleep_edf(params: dict[str, Any], *, path: str = "sleep.synthetic"
                                 ) -> dict[str, Any]:
    """Synthetic subject-nights as ``{Sleep-EDF file name: mne Raw | mne Annotations}``; the
    catalog writes them as EDF+ (and leaves a folder of real recordings alone). ``path``
    names the parameters in errors (other pipelines reuse this node)."""
    return synthetic_sleep_edf(from_params(SyntheticSleepConfig, params, path=path))


def build_sleep_epochs(recordings: list[dict[str, Any]], edf_files: list[str],
                       params: dict[str, Any], *, path: str = "sleep.ingestion") -> dict[str, Any]:
    """Band-pass, resample, normalise and cut every recording into 30-s epochs.

    Args:
        recordings: what the Sleep-EDF reader returns (validated, trimmed to the sleep
            period plus the kept wake).
        edf_files: the Sleep-EDF files in the folder (every recording read must be among
            them; the input also orders this node after the generator).

    Returns:
        ``{"stages", "channels", "sampling_rate", "epoch_seconds", "recordings": [{"name",
        "subject", "night", "epochs": [E, C, 30 * sampling_rate] float32, "labels": [E] int64,
        "epoch_index": [E] int64}]}``.
    """
    config = from_params(IngestionParams, params, path=path)
    listed = set(edf_files)
    unlisted = sorted(r["psg_file"] for r in recordings if r["psg_file"] not in listed)
    if unlisted:
        raise ValueError(f"recordings {unlisted} were read but are not among the folder's "
                         f"Sleep-EDF files {sorted(listed)}")
    channels = {tuple(r["channels"]) for r in recordings}
    if len(channels) != 1:
        raise ValueError(f"recordings disagree on their channels: {sorted(channels)}")
    out = []
    for recording in recordings:
        epochs = recording_epochs(recording, low_hz=config.low_hz, high_hz=config.high_hz,
                                  target_hz=config.target_hz, filter_order=config.filter_order,
                                  normalize=config.normalize, clip=config.clip)
        out.append({"name": recording["name"], "subject": int(recording["subject"]),
                    "night": int(recording["night"]),
                    **{key: torch.from_numpy(value) for key, value in epochs.items()}})
    return {"stages": list(STAGES), "channels": list(next(iter(channels))),
            "sampling_rate": float(config.target_hz), "epoch_seconds": EPOCH_SECONDS,
            "recordings": out}


def _stage_counts(recordings: list[dict[str, Any]]) -> dict[str, int]:
    labels = torch.cat([r["labels"] for r in recordings]) if recordings else torch.zeros(0, dtype=torch.long)
    counts = torch.bincount(labels, minlength=len(STAGES))
    return {stage: int(n) for stage, n in zip(STAGES, counts, strict=True)}


def split_sleep_subjects(epochs: dict[str, Any], params: dict[str, Any], *,
                         path: str = "sleep.ingestion") -> dict[str, Any]:
    """Seeded split by subject: all nights of a subject land in the same part.

    Returns:
        ``{part: {"subjects", "recordings", "epochs", "stage_counts"}}`` for train, val, test.
    """
    config = from_params(IngestionParams, params, path=path).split
    recordings = epochs["recordings"]
    parts = subject_split([r["subject"] for r in recordings], val_subjects=config.val_subjects,
                          test_subjects=config.test_subjects, seed=config.seed)
    summary = {}
    for part, subjects in parts.items():
        members = [r for r in recordings if r["subject"] in set(subjects)]
        summary[part] = {"subjects": subjects, "recordings": [r["name"] for r in members],
                         "epochs": sum(len(r["labels"]) for r in members),
                         "stage_counts": _stage_counts(members)}
    return summary


def _recordings_of(epochs: dict[str, Any], split: dict[str, Any], part: str) -> list[dict[str, Any]]:
    names = set(split[part]["recordings"])
    return [r for r in epochs["recordings"] if r["name"] in names]


# ------------------------------------------------------------------------- training


def _validation(recordings: list[dict[str, Any]], *, window: int, stride: int):
    """``validate`` callback: loss, accuracy and kappa of per-epoch predictions on the
    validation nights."""
    labels = torch.cat([r["labels"] for r in recordings])

    def validate(model) -> dict[str, float]:
        device = next(model.parameters()).device
        probs = torch.cat([predict_recording(model, r["epochs"], window=window, stride=stride,
                                             device=device)[0] for r in recordings])
        predicted = probs.argmax(1)
        return {"val_loss": F.nll_loss(probs.clamp_min(1e-8).log(), labels).item(),
                "val_acc": (predicted == labels).float().mean().item(),
                "val_kappa": float(cohen_kappa_score(labels.numpy(), predicted.numpy()))}

    return validate


def train_sleep_model(epochs: dict[str, Any], split: dict[str, Any], params: dict[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train the CNN + BiLSTM stager on windows of consecutive training epochs with the joint
    loss ``ce_weight * CE + ctc_weight * CTC``; the validation nights monitor it.

    Each training epoch covers every training night with non-overlapping windows from a
    random offset, so window boundaries move between epochs.

    Returns:
        the model bundle (with the training ``window`` and ``stages``), its per-epoch history
        and that history shaped for MLflow.
    """
    config = from_params(TrainingParams, params, path="sleep.training")
    bundle, history = fit_sleep_stager(_recordings_of(epochs, split, "train"),
                                       _recordings_of(epochs, split, "val"),
                                       stages=epochs["stages"], config=config)
    return bundle, history, history_as_metric_steps(history, prefix="sleep")


def fit_sleep_stager(train_recordings: list[dict[str, Any]], val_recordings: list[dict[str, Any]],
                     *, stages: list[str], config: TrainingParams,
                     encoder_features: dict[str, torch.Tensor] | None = None,
                     name: str = "sleep", path: str = "sleep.training"
                     ) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The training of :func:`train_sleep_model` on given recordings (``{"epochs", "labels"}``
    each), optionally with the epoch CNN initialised from ``encoder_features`` (a pretrained
    :func:`~contrastive_signals.models.sleep.epoch_feature_layers` state, e.g. wav2vec's).

    Returns:
        the model bundle and its per-epoch history.
    """
    train = [r for r in train_recordings if len(r["labels"]) >= config.window]
    if not train:
        raise ValueError(f"no training recording holds {config.window} epochs ({path}.window)")
    val = val_recordings
    x = torch.cat([r["epochs"] for r in train])          # [N, C, L]
    y = torch.cat([r["labels"] for r in train])          # [N]
    bounds = np.cumsum([0] + [len(r["labels"]) for r in train])
    steps = torch.arange(config.window)

    def batches(epoch: int, generator: torch.Generator):
        starts = []
        for first, stop in zip(bounds[:-1], bounds[1:], strict=True):
            offset = int(torch.randint(config.window, (1,), generator=generator))
            starts += [first + s for s in window_starts(int(stop - first), window=config.window,
                                                        stride=config.window, offset=offset)]
        order = torch.tensor(starts)[torch.randperm(len(starts), generator=generator)]
        for i in range(0, len(order), config.batch_size):
            index = order[i:i + config.batch_size, None] + steps   # [B, T]
            yield x[index], y[index]

    def loss_fn(net, batch, generator):
        windows, labels = batch
        epoch_logits, ctc_logits = net(windows)
        return joint_loss(epoch_logits, ctc_logits, labels, ce_weight=config.ce_weight,
                          ctc_weight=config.ctc_weight, label_smoothing=config.label_smoothing)

    seed_everything(config.fit.seed)
    model_config = {"in_channels": int(x.shape[1]), "num_stages": len(stages),
                    **asdict(config.model)}
    model = build_model("sleep_stager", model_config, seed=config.fit.seed)
    if encoder_features is not None:
        load_encoder_features(model, encoder_features)
    with torch_threads(config.num_threads):
        result = fit(model, loss_fn=loss_fn, batches=batches, config=replace(config.fit, name=name),
                     validate=_validation(val, window=config.window, stride=config.val_stride) if val else None)
    bundle = {**to_bundle(result.model, "sleep_stager", model_config), "window": config.window,
              "stages": list(stages)}
    return bundle, result.history


# ----------------------------------------------------------------------- evaluation


def predict_sleep_stages(epochs: dict[str, Any], split: dict[str, Any], bundle: dict[str, Any],
                         params: dict[str, Any], *, path: str = "sleep.evaluation") -> dict[str, Any]:
    """Per-epoch stages (classifier head, overlapping windows averaged) and per-window CTC
    decodings of every test night.

    Returns:
        ``{"stages", "epoch_seconds", "recordings": [{"name", "subject", "true", "predicted",
        "epoch_index", "window_references", "window_hypotheses"}]}``: ``true``/``predicted``
        ``[E]`` stage indices; the window lists hold stage-index sequences of consecutive,
        non-overlapping ``window``-epoch stretches (collapsed truth vs CTC decoding).
    """
    config = from_params(SleepEvaluationParams, params, path=path)
    model = from_bundle(bundle)
    window = int(bundle["window"])
    out = []
    for recording in _recordings_of(epochs, split, "test"):
        with torch_threads(config.num_threads):
            probs, ctc_log_probs = predict_recording(model, recording["epochs"], window=window,
                                                     stride=config.stride, batch_size=config.batch_size)
        if config.decoder == "greedy":
            decoded = [greedy_decode(lp.unsqueeze(1), blank=BLANK)[0] for lp in ctc_log_probs]
        else:
            decoded = [beam_search_decode(lp.unsqueeze(1), beam_width=config.beam_width, blank=BLANK)[0]
                       for lp in ctc_log_probs]
        labels = recording["labels"]
        out.append({
            "name": recording["name"], "subject": recording["subject"],
            "true": labels.clone(), "predicted": probs.argmax(1),
            "epoch_index": recording["epoch_index"].clone(),
            "window_references": [collapse_repeats(labels[s:s + window])
                                  for s in range(0, len(labels), window)],
            "window_hypotheses": [[symbol - 1 for symbol in d] for d in decoded],
        })
    return {"stages": list(epochs["stages"]), "epoch_seconds": float(epochs["epoch_seconds"]),
            "recordings": out}


def evaluate_sleep_predictions(predictions: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """The documented figures ``sleep.epoch_acc``, ``sleep.macro_f1``, ``sleep.kappa``,
    ``sleep.cer`` (per test window, see :mod:`contrastive_signals.metrics.sleep`) and
    ``sleep.transitions_abs_err``, flat (JSON) and shaped for MLflow."""
    recordings = predictions["recordings"]
    if not recordings:
        raise ValueError("no test recording to evaluate")
    metrics = sleep_staging_metrics(
        [r["true"].numpy() for r in recordings], [r["predicted"].numpy() for r in recordings],
        [w for r in recordings for w in r["window_references"]],
        [w for r in recordings for w in r["window_hypotheses"]])
    for r in recordings:
        logger.info("sleep: %s transitions true=%d predicted=%d", r["name"],
                    count_transitions(r["true"].numpy()), count_transitions(r["predicted"].numpy()))
    flat = {f"sleep.{name}": value for name, value in metrics.items()}
    return flat, final_metrics_as_steps(flat)


def plot_sleep_hypnogram(predictions: dict[str, Any], params: dict[str, Any]) -> Figure:
    """True and predicted hypnograms of one test night (``sleep.evaluation.plot_recording``)."""
    config = from_params(SleepEvaluationParams, params, path="sleep.evaluation")
    recordings = predictions["recordings"]
    recording = recordings[min(config.plot_recording, len(recordings) - 1)]
    return hypnogram_figure(recording["true"].numpy(), recording["predicted"].numpy(),
                            stage_names=predictions["stages"], epoch_seconds=predictions["epoch_seconds"],
                            epoch_index=recording["epoch_index"].numpy(),
                            title=f"sleep: hypnogram of test night {recording['name']}")


def plot_sleep_confusion(predictions: dict[str, Any]) -> Figure:
    """Row-normalised confusion matrix of per-epoch stages over all test nights."""
    true = np.concatenate([r["true"].numpy() for r in predictions["recordings"]])
    predicted = np.concatenate([r["predicted"].numpy() for r in predictions["recordings"]])
    return confusion_matrix_figure(true, predicted, class_names=list(predictions["stages"]),
                                   title="sleep: per-epoch stages, test nights", normalize=True)
