"""wav2vec 2.0-style pretraining on raw sleep EEG and its label-efficiency test: the sleep
stager fine-tuned with its epoch CNN initialised from the wav2vec feature encoder against the
same model from scratch, on a share of the labelled training recordings, over several seeds
(recipes: ``methods/wav2vec.py``, ``methods/label_efficiency.py``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.data.sleep_epochs import recordings_of
from contrastive_signals.methods.label_efficiency import (
    LabelEfficiencyParams,
    label_efficiency_runs,
)
from contrastive_signals.methods.wav2vec import Wav2VecPretraining, pretrain_on_recordings
from contrastive_signals.metrics.label_efficiency import summarise_runs
from contrastive_signals.models.registry import from_bundle, to_bundle
from contrastive_signals.plots.label_efficiency import label_efficiency_figure
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

ENCODER = "sleep_cnn"  # the stager's epoch CNN, so the pretrained weights warm-start it
CONTEXT_ENCODER = "sleep_cnn_context"  # that CNN + the context network (stager frame_context)
REPORTED = ("cer", "macro_f1", "epoch_acc", "kappa")


def pretrain_sleep_wav2vec(epochs: dict[str, Any], split: dict[str, Any], params: dict[str, Any],
                           label_params: dict[str, Any]
                           ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """wav2vec on every training night (labels unused), monitored on the validation nights;
    returns the feature encoder's bundle, the per-epoch history and that history for MLflow."""
    config = from_params(Wav2VecPretraining, params, path="wav2vec.pretraining")
    stager = from_params(LabelEfficiencyParams, label_params, path="wav2vec.label_efficiency")
    model = stager.training.model
    encoder_config = stager_encoder_config(model, in_channels=len(epochs["channels"]))
    context = model.frame_context
    if context is not None and context != config.method.model.frame_context():
        raise ParameterError(
            f"wav2vec.label_efficiency.training.model.frame_context ({asdict(context)}) must "
            f"equal the context network it fine-tunes, wav2vec.pretraining.method.model "
            f"({asdict(config.method.model.frame_context())})")
    encoder, history = pretrain_on_recordings(
        recordings_of(epochs, split, "train"), recordings_of(epochs, split, "val"), params=config,
        architecture=ENCODER, encoder_config=encoder_config, path="wav2vec.pretraining",
        export_context=context is not None, sampling_rate=epochs["sampling_rate"])
    bundle = pretrained_bundle(encoder, encoder_config, context)
    return bundle, history, history_as_metric_steps(history, prefix="wav2vec")


def stager_encoder_config(model: Any, *, in_channels: int) -> dict[str, Any]:
    """The config of the stager's epoch CNN (``model``: the stager's model settings) that the
    pretraining builds, so that its weights load into the stager."""
    return {"in_channels": in_channels, "dropout": 0.0, "base_channels": model.base_channels,
            "channel_wise_stem": model.channel_wise_stem}


def pretrained_bundle(encoder: Any, encoder_config: dict[str, Any], context: Any | None
                      ) -> dict[str, Any]:
    """The bundle of a pretrained ``encoder``: the CNN alone, or with the context network whose
    settings are ``context`` (a ``FrameContextParams``) when the stager fine-tunes it too."""
    if context is None:
        return to_bundle(encoder, ENCODER, encoder_config)
    return to_bundle(encoder, CONTEXT_ENCODER, {**encoder_config, "frame_context": asdict(context)})


def run_label_efficiency(epochs: dict[str, Any], split: dict[str, Any], bundle: dict[str, Any],
                         params: dict[str, Any]) -> dict[str, Any]:
    """Every (fraction, seed, init) fine-tuning run on the test nights: ``{"runs": [...]}``."""
    config = from_params(LabelEfficiencyParams, params, path="wav2vec.label_efficiency")
    pretrained = from_bundle(bundle, modality="signal", outputs=("frames",))
    parts = [recordings_of(epochs, split, part) for part in ("train", "val", "test")]
    return {"runs": label_efficiency_runs(*parts, stages=epochs["stages"], params=config,
                                          pretrained=pretrained, path="wav2vec.label_efficiency")}


def summarise_label_efficiency(results: dict[str, Any]
                               ) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """``sleep.<init>_<NN>pc.<metric>`` (mean over seeds), ``.std`` and ``.n_recordings``:
    for ``ts_sleep_metrics``, for the ``wav2vec_metrics`` report and for MLflow."""
    flat = summarise_runs(results["runs"], metrics=REPORTED, prefix="sleep")
    return flat, dict(flat), final_metrics_as_steps(flat)


def plot_label_efficiency(results: dict[str, Any]) -> Figure:
    """CER and macro-F1 against the share of labelled recordings, wav2vec vs scratch."""
    return label_efficiency_figure(
        [{"group": run["init"], "fraction": run["fraction"], **run["metrics"]}
         for run in results["runs"]],
        metrics=("cer", "macro_f1"), title="sleep stager: wav2vec init vs scratch (test nights)")
