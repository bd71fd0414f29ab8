"""Nodes of the ``afm`` pipeline: simulate -> ingest through afmformats -> split ->
preprocess (with / without the derivative channel) -> SimCLR / scratch encoders -> triplet
fine-tuning + head per ablation variant, a supervised CNN and a tuned find_peaks detector
-> metrics and plots. The recipes live in :mod:`.training`; nodes unpack parameters."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.data.afm_curves import (
    UNLABELLED,
    collect_curves,
    curves_to_grid,
)
from contrastive_signals.data.afm_simulator import AFM_CLASSES, AfmSimulationConfig, simulate_curves
from contrastive_signals.models.registry import build_model, from_bundle, to_bundle
from contrastive_signals.pipelines.afm import training
from contrastive_signals.pipelines.afm.params import (
    FindPeaksParams,
    FinetuningParams,
    IngestionParams,
    ModelParams,
    PlotParams,
    PreprocessingParams,
    PretrainingParams,
    SplitParams,
    SupervisedParams,
)
from contrastive_signals.plots.afm import example_curves_figure
from contrastive_signals.plots.confusion import confusion_matrix_figure
from contrastive_signals.plots.embeddings import tsne_figure
from contrastive_signals.signal.steps import apply_feature_steps
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

logger = logging.getLogger(__name__)

MAIN_VARIANT = "deriv_pre_100pc"
"""The model behind the headline figures ``afm.single_rupture.f1`` and ``afm.macro_f1``."""


# ---------------------------------------------------------------------------- data
def simulate_afm_curves(params: dict[str, Any]) -> dict[str, Any]:
    """Labelled retract curves for the catalog to write as afmformats HDF5 files."""
    config = from_params(AfmSimulationConfig, params, path="afm.simulation")
    return {"curves": simulate_curves(config), "sampling_rate": config.sampling_rate}


def ingest_afm_curves(outcomes: list[dict[str, Any]], simulated_files: list[str],
                      params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every curve read back from the AFM folder (``simulated_files`` only orders this node
    after the simulator), under the ``on_bad_file`` policy, on a common distance grid.

    Returns:
        ``{"force": [N, 1, P] N, "labels": [N] (-1 unlabelled), "files", "curve_ids",
        "spacing_m": [N]}`` and the ingestion report (files, curves, bad files).
    """
    config = from_params(IngestionParams, params, path="afm.ingestion")
    curves, report = collect_curves(outcomes, on_bad_file=config.on_bad_file)
    force, spacing = curves_to_grid(curves, points=config.grid_points)
    labels = np.array([c["label"] for c in curves], dtype=np.int64)
    report["labelled_curves"] = int(np.sum(labels != UNLABELLED))
    logger.info("AFM ingestion: %d curves from %d files (%d bad, %d labelled)", len(curves),
                report["files"], len(report["bad_files"]), report["labelled_curves"])
    return {"force": torch.from_numpy(force), "labels": torch.from_numpy(labels),
            "files": [c["file"] for c in curves], "curve_ids": [c["curve_id"] for c in curves],
            "spacing_m": torch.from_numpy(spacing)}, report


def split_afm_curves(curves: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Stratified train / val / test split of the labelled curves, the unlabelled ones (for
    pretraining only), and the labelled training subsets of the ablation (``5pc``,
    ``100pc``; stratified, at least 2 curves per class)."""
    from contrastive_signals.data.splits import stratified_split_indices

    config = from_params(SplitParams, params, path="afm.split")
    labels = curves["labels"].numpy()
    labelled = np.flatnonzero(labels != UNLABELLED)
    if len(np.unique(labels[labelled])) < 2:
        raise ValueError(f"the AFM curves carry {len(np.unique(labels[labelled]))} labelled "
                         f"class(es); classification needs at least 2 (see afm.simulation)")
    parts = stratified_split_indices(labels[labelled], val_fraction=config.val_fraction,
                                     test_fraction=config.test_fraction, seed=config.seed)
    split = {name: labelled[idx].tolist() for name, idx in parts.items()}
    split["unlabelled"] = np.flatnonzero(labels == UNLABELLED).tolist()
    rng = np.random.default_rng(config.seed)
    train = np.asarray(split["train"])
    subsets = {}
    for name, fraction in config.label_fractions.items():
        chosen = []
        for cls in np.unique(labels[train]):
            members = train[labels[train] == cls]
            n = min(len(members), max(2, int(round(fraction * len(members)))))
            chosen.append(rng.choice(members, size=n, replace=False))
        subsets[name] = np.sort(np.concatenate(chosen)).tolist()
    split["labelled"] = subsets
    return split


def preprocess_afm_curves(curves: dict[str, Any], params: dict[str, Any], *, derivative: bool
                          ) -> dict[str, Any]:
    """The declared preprocessing steps on every curve (one batch); ``derivative=False``
    drops the ``derivative_channel`` step (the ablation's force-only input).

    Returns:
        ``{"curves": [N, C, L] float32, "labels": [N]}`` with ``C = 2`` or ``1``.
    """
    config = from_params(PreprocessingParams, params, path="afm.preprocessing")
    steps = [dict(s) for s in config.steps] if derivative else config.without_derivative()
    features, _ = apply_feature_steps(curves["force"].numpy(), steps, sampling_rate=1.0)
    return {"curves": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
            "labels": curves["labels"].clone()}


# ---------------------------------------------------------------------------- models
def _part(features: dict[str, Any], index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.as_tensor(index, dtype=torch.long)
    return features["curves"][idx], features["labels"][idx]


def _model_config(features: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    model = from_params(ModelParams, params, path="afm.model")
    _, channels, length = features["curves"].shape
    return model.config(in_channels=channels, length=length, num_classes=len(AFM_CLASSES))


def pretrain_simclr_encoder(features: dict[str, Any], split: dict[str, Any],
                            model_params: dict[str, Any], params: dict[str, Any], *, name: str
                            ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """SimCLR on the training and unlabelled curves (labels unused; the validation curves'
    labels only monitor a kNN probe)."""
    config = from_params(PretrainingParams, params, path="afm.pretraining")
    model_config = _model_config(features, model_params)
    pool = split["train"] + split["unlabelled"]
    x_val, y_val = _part(features, split["val"])
    _, y_ref = _part(features, split["train"])
    bundle, history = training.pretrain_simclr(
        features["curves"][torch.as_tensor(pool, dtype=torch.long)], encoder_config=model_config,
        config=config, x_val=x_val, y_val=y_val, y_ref=y_ref,
        ref_index=torch.arange(len(split["train"])))
    return bundle, history, history_as_metric_steps(history, prefix=f"afm.{name}")


def initial_encoder(features: dict[str, Any], model_params: dict[str, Any],
                    params: dict[str, Any]) -> dict[str, Any]:
    """A freshly initialised encoder (the ablation's no-pretraining start), seeded by
    ``afm.finetuning.fit.seed``."""
    config = from_params(FinetuningParams, params, path="afm.finetuning")
    model_config = _model_config(features, model_params)
    return to_bundle(build_model(training.ARCHITECTURE, model_config, seed=config.fit.seed),
                     training.ARCHITECTURE, model_config)


def finetune_classifier(features: dict[str, Any], encoder: dict[str, Any], split: dict[str, Any],
                        params: dict[str, Any], *, label_subset: str, name: str
                        ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Triplet fine-tuning on the ``label_subset`` training labels, then the classifier head."""
    config = from_params(FinetuningParams, params, path="afm.finetuning")
    x, y = _part(features, split["labelled"][label_subset])
    x_val, y_val = _part(features, split["val"])
    bundle, history = training.finetune_with_head(encoder, x, y, x_val=x_val, y_val=y_val,
                                                  config=config)
    return bundle, history, history_as_metric_steps(history, prefix=f"afm.{name}")


def train_supervised_cnn(features: dict[str, Any], split: dict[str, Any],
                         model_params: dict[str, Any], params: dict[str, Any]
                         ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """The supervised 1-D CNN from scratch on all training labels."""
    config = from_params(SupervisedParams, params, path="afm.supervised")
    x, y = _part(features, split["labelled"]["100pc"])
    x_val, y_val = _part(features, split["val"])
    bundle, history = training.train_supervised(
        x, y, x_val=x_val, y_val=y_val, model_config=_model_config(features, model_params),
        config=config)
    return bundle, history, history_as_metric_steps(history, prefix="afm.supervised_cnn")


def evaluate_classifier(features: dict[str, Any], classifier: dict[str, Any],
                        split: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Test-set predictions (with embeddings, for the t-SNE) and scores."""
    x, y = _part(features, split["test"])
    predicted, embeddings = training.predict(from_bundle(classifier), x)
    scores = training.classification_scores(y.numpy(), predicted)
    return {"y_true": y.numpy(), "y_pred": predicted, "embeddings": embeddings}, scores


# ---------------------------------------------------------------------------- find_peaks
def _contact_index(features: dict[str, Any], preprocessing: dict[str, Any]) -> int:
    config = from_params(PreprocessingParams, preprocessing, path="afm.preprocessing")
    align = [s for s in config.steps if s["name"] == "align_contact"]
    if not align:
        raise ValueError("afm.preprocessing.steps needs an align_contact step: the find_peaks "
                         "baseline tells adhesion from ruptures by the aligned contact point")
    return int(round(align[-1].get("target_fraction", 0.05) * features["curves"].shape[-1]))


def tune_peak_detector(features: dict[str, Any], split: dict[str, Any],
                       preprocessing: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The find_peaks baseline's prominence and contact zone, tuned on the training curves."""
    config = from_params(FindPeaksParams, params, path="afm.find_peaks")
    x, y = _part(features, split["train"])
    return training.tune_find_peaks(x[:, 0].numpy(), y.numpy(),
                                    contact_index=_contact_index(features, preprocessing),
                                    config=config)


def evaluate_peak_detector(features: dict[str, Any], split: dict[str, Any],
                           detector: dict[str, Any]) -> dict[str, float]:
    """Test-set scores of the tuned detector."""
    x, y = _part(features, split["test"])
    predicted, _ = training.find_peaks_predict(x[:, 0].numpy(), detector)
    return training.classification_scores(y.numpy(), predicted)


# ---------------------------------------------------------------------------- report
def report_afm_metrics(ingestion_report: dict[str, Any], find_peaks: dict[str, float],
                       supervised: dict[str, float], **variants: dict[str, float]
                       ) -> tuple[dict[str, float], dict[str, Any]]:
    """The flat ``afm.*`` figures: headline scores of ``deriv_pre_100pc`` (``afm.<class>.f1``,
    ``afm.macro_f1``, ``afm.accuracy``), ``afm.find_peaks.*``, ``afm.supervised_cnn.*``,
    ``afm.<variant>.macro_f1`` / ``.single_rupture.f1`` and the ingestion counts."""
    metrics = {f"afm.{k}": v for k, v in variants[MAIN_VARIANT].items()}
    metrics.update({f"afm.find_peaks.{k}": v for k, v in find_peaks.items()})
    metrics.update({f"afm.supervised_cnn.{k}": v for k, v in supervised.items()})
    for variant, scores in variants.items():
        metrics[f"afm.{variant}.macro_f1"] = scores["macro_f1"]
        metrics[f"afm.{variant}.single_rupture.f1"] = scores["single_rupture.f1"]
    metrics["afm.ingestion.curves"] = float(ingestion_report["curves"])
    metrics["afm.ingestion.bad_files"] = float(len(ingestion_report["bad_files"]))
    metrics = {k: float(v) for k, v in sorted(metrics.items())}
    return metrics, final_metrics_as_steps(metrics)


# ---------------------------------------------------------------------------- plots
def plot_example_curves(features: dict[str, Any], split: dict[str, Any],
                        detector: dict[str, Any], params: dict[str, Any]) -> Figure:
    """Test curves per class with the find_peaks events marked and its predicted class."""
    config = from_params(PlotParams, params, path="afm.plots")
    x, y = _part(features, split["test"])
    force = x[:, 0].numpy()
    predicted, events = training.find_peaks_predict(force, detector)
    return example_curves_figure(force, y.numpy(), events, class_names=AFM_CLASSES,
                                 per_class=config.examples_per_class, predicted=predicted,
                                 title="Test curves; triangles: find_peaks events")


def plot_embedding_tsne(predictions: dict[str, Any], params: dict[str, Any]) -> Figure:
    """t-SNE of the main model's test embeddings, coloured by true class."""
    config = from_params(PlotParams, params, path="afm.plots")
    names = np.asarray(AFM_CLASSES)[predictions["y_true"]]
    return tsne_figure(predictions["embeddings"], names, title=f"AFM {MAIN_VARIANT} test "
                       f"embeddings", seed=config.seed, perplexity=config.tsne_perplexity,
                       max_iter=config.tsne_iterations)


def plot_confusion(predictions: dict[str, Any]) -> Figure:
    """Row-normalised test confusion matrix of the main model."""
    return confusion_matrix_figure(predictions["y_true"], predictions["y_pred"],
                                   class_names=list(AFM_CLASSES), normalize=True,
                                   title=f"AFM {MAIN_VARIANT} (test)")
