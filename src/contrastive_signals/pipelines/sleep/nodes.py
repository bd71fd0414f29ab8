"""Sleep staging nodes: parameters in, library calls, values out (the recipes are in
``data/sleep_epochs.py``, ``methods/sleep_stager.py`` and ``metrics/sleep.py``). ``path``
names the parameters in errors where other pipelines reuse a node."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.data.sleep_epochs import (
    IngestionParams,
    recordings_of,
    sleep_epochs,
    split_by_subject,
)
from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
from contrastive_signals.methods.sleep_stager import (
    SleepEvaluationParams,
    SleepStagerParams,
    stage_recordings,
    train_sleep_stager,
)
from contrastive_signals.metrics.sleep import staged_recordings_metrics
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.plots.confusion import confusion_matrix_figure
from contrastive_signals.plots.hypnogram import hypnogram_figure
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps


def generate_synthetic_sleep_edf(params: dict[str, Any], *, path: str = "sleep.synthetic"
                                 ) -> dict[str, Any]:
    """Synthetic subject-nights as ``{Sleep-EDF file name: mne Raw | mne Annotations}``; the
    catalog writes them as EDF+ (and leaves a folder of real recordings alone)."""
    return synthetic_sleep_edf(from_params(SyntheticSleepConfig, params, path=path))


def build_sleep_epochs(recordings: list[dict[str, Any]], edf_files: list[str],
                       params: dict[str, Any], *, path: str = "sleep.ingestion") -> dict[str, Any]:
    """The epochs dataset of every recording read (``edf_files``, the folder listing, also
    orders this node after the generator)."""
    return sleep_epochs(recordings, edf_files, from_params(IngestionParams, params, path=path))


def split_sleep_subjects(epochs: dict[str, Any], params: dict[str, Any], *,
                         path: str = "sleep.ingestion") -> dict[str, Any]:
    """Seeded split by subject: ``{part: {"subjects", "recordings", "epochs", "stage_counts"}}``."""
    return split_by_subject(epochs, from_params(IngestionParams, params, path=path).split,
                            path=f"{path}.split")


def train_sleep_model(epochs: dict[str, Any], split: dict[str, Any], params: dict[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """The stager trained on the training nights, monitored on the validation nights: its
    bundle, per-epoch history and that history for MLflow."""
    config = from_params(SleepStagerParams, params, path="sleep.training")
    bundle, history = train_sleep_stager(recordings_of(epochs, split, "train"),
                                         recordings_of(epochs, split, "val"),
                                         stages=epochs["stages"], params=config)
    return bundle, history, history_as_metric_steps(history, prefix="sleep")


def predict_sleep_stages(epochs: dict[str, Any], split: dict[str, Any], bundle: dict[str, Any],
                         params: dict[str, Any]) -> dict[str, Any]:
    """``{"stages", "epoch_seconds", "recordings": stage_recordings(...)}`` of the test nights."""
    config = from_params(SleepEvaluationParams, params, path="sleep.evaluation")
    staged = stage_recordings(from_bundle(bundle), recordings_of(epochs, split, "test"),
                              window=int(bundle["window"]), params=config)
    return {"stages": list(epochs["stages"]), "epoch_seconds": float(epochs["epoch_seconds"]),
            "recordings": staged}


def evaluate_sleep_predictions(predictions: dict[str, Any]
                               ) -> tuple[dict[str, float], dict[str, Any]]:
    """``sleep.epoch_acc``, ``sleep.macro_f1``, ``sleep.kappa``, ``sleep.cer``,
    ``sleep.transitions_abs_err`` (``metrics/sleep.py``), flat and shaped for MLflow."""
    metrics = staged_recordings_metrics(predictions["recordings"])
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
