"""Nodes of the ``afm`` pipeline (see :mod:`.pipeline`): they unpack parameters and call the
library (data shaping, methods, scores, the find_peaks detector, plots)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.data.afm_curves import IngestionParams, curves_dataset
from contrastive_signals.data.afm_simulator import AFM_CLASSES, AfmSimulationConfig, simulate_curves
from contrastive_signals.data.splits import split_with_unlabelled
from contrastive_signals.methods.train import train_classifier, train_method, triplet_then_head
from contrastive_signals.metrics.classification import ablation_report, classification_scores
from contrastive_signals.models.curves import CurveCNNParams
from contrastive_signals.models.registry import (
    build_model,
    embed,
    from_bundle,
    get_entry,
    to_bundle,
)
from contrastive_signals.plots.afm import example_curves_figure
from contrastive_signals.plots.confusion import confusion_matrix_figure
from contrastive_signals.plots.embeddings import tsne_figure
from contrastive_signals.signal import force_curves
from contrastive_signals.signal.steps import apply_feature_steps
from contrastive_signals.training.device import seeded_global_rng, torch_threads
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps
from contrastive_signals.training.validation import knn_validation

from . import params as P

logger = logging.getLogger(__name__)

MAIN_VARIANT = "deriv_pre_100pc"
"""The model behind the headline figures ``afm.single_rupture.f1`` and ``afm.macro_f1``."""


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return classification_scores(y_true, y_pred, AFM_CLASSES)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"macro_f1": _scores(y_true, y_pred)["macro_f1"]}


def _part(features: dict[str, Any], index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.as_tensor(index, dtype=torch.long)
    return features["curves"][idx], features["labels"][idx]


def _model_config(features: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    _, channels, length = features["curves"].shape
    return from_params(CurveCNNParams, params, path="afm.model").config(
        in_channels=channels, length=length, num_classes=len(AFM_CLASSES))


def _trained(bundle: dict[str, Any], history: dict[str, list[float]], name: str) -> tuple:
    return bundle, history, history_as_metric_steps(history, prefix=f"afm.{name}")


def simulate_afm_curves(params: dict[str, Any]) -> dict[str, Any]:
    """Labelled retract curves for the catalog to write as afmformats HDF5 files."""
    config = from_params(AfmSimulationConfig, params, path="afm.simulation")
    return {"curves": simulate_curves(config), "sampling_rate": config.sampling_rate}


def ingest_afm_curves(outcomes: list[dict[str, Any]], simulated_files: list[str],
                      params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every curve of the AFM folder on its distance grid, and the ingestion report
    (``simulated_files`` only orders this node after the simulator)."""
    data, report = curves_dataset(outcomes, from_params(IngestionParams, params,
                                                        path="afm.ingestion"))
    logger.info("AFM ingestion: %d curves from %d files (%d bad, %d labelled)", report["curves"],
                report["files"], len(report["bad_files"]), report["labelled_curves"])
    return data, report


def split_afm_curves(curves: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Stratified train / val / test split of the labelled curves, the unlabelled ones, and
    the ablation's labelled training subsets."""
    return split_with_unlabelled(curves["labels"].numpy(),
                                 from_params(P.SplitParams, params, path="afm.split"))


def preprocess_afm_curves(curves: dict[str, Any], params: dict[str, Any], *, derivative: bool
                          ) -> dict[str, Any]:
    """The declared steps on every curve (without ``derivative_channel`` unless
    ``derivative``): ``{"curves": [N, C, L] float32, "labels": [N]}``, and ``"derivative"``
    (the step's scale / smoothing options) when any is set."""
    config = from_params(P.PreprocessingParams, params, path="afm.preprocessing")
    features, _ = apply_feature_steps(curves["force"].numpy(),
                                      config.chosen(derivative=derivative), sampling_rate=1.0)
    out = {"curves": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
           "labels": curves["labels"].clone()}
    options = config.derivative_options() if derivative else {}
    return {**out, "derivative": options} if options else out


def pretrain_encoder(features: dict[str, Any], split: dict[str, Any],
                     model_params: dict[str, Any], params: dict[str, Any], *, name: str) -> tuple:
    """``afm.pretraining.method`` on the training curves (SimCLR: and the unlabelled ones,
    labels unused); the validation labels only monitor a kNN probe."""
    config = from_params(P.PretrainingParams, params, path="afm.pretraining")
    model_config, labelled = _model_config(features, model_params), config.requires.needs_labels
    x, y = _part(features, split["train"] + ([] if labelled else split["unlabelled"]))
    views = replace(config.augmentation, derivative_channel=model_config["in_channels"] == 2,
                    derivative_options=tuple(sorted(features.get("derivative", {}).items())))
    method = config.build(get_entry(P.ARCHITECTURE), views=views, seed=config.fit.seed)
    with seeded_global_rng(config.fit.seed), torch_threads(config.num_threads):
        result = train_method(
            method, build_model(P.ARCHITECTURE, model_config, seed=config.fit.seed), x=x,
            labels=y if labelled else None, batch_size=config.batch_size, config=config.fit,
            validate=knn_validation(*_part(features, split["train"]),
                                    *_part(features, split["val"])))
    return _trained(to_bundle(method.export(result.model), P.ARCHITECTURE, model_config),
                    result.history, name)


def initial_encoder(features: dict[str, Any], model_params: dict[str, Any],
                    params: dict[str, Any]) -> dict[str, Any]:
    """A fresh encoder (the no-pretraining start), seeded by ``afm.finetuning.fit.seed``."""
    seed = from_params(P.FinetuningParams, params, path="afm.finetuning").fit.seed
    model_config = _model_config(features, model_params)
    return to_bundle(build_model(P.ARCHITECTURE, model_config, seed=seed), P.ARCHITECTURE,
                     model_config)


def finetune_classifier(features: dict[str, Any], encoder: dict[str, Any], split: dict[str, Any],
                        params: dict[str, Any], *, label_subset: str, name: str) -> tuple:
    """Triplet fine-tuning on the ``label_subset`` training labels, then the classifier head."""
    config = from_params(P.FinetuningParams, params, path="afm.finetuning")
    model = from_bundle(encoder)
    with seeded_global_rng(config.fit.seed), torch_threads(config.num_threads):
        history = triplet_then_head(
            model, _part(features, split["labelled"][label_subset]), _part(features, split["val"]),
            triplet=config.triplet, triplet_fit=replace(config.fit, name="afm_triplet"),
            head=replace(config.head, fit=replace(config.head.fit, name="afm_head")),
            scores=_macro_f1)
    return _trained(to_bundle(model, P.ARCHITECTURE, encoder["config"]), history, name)


def train_supervised_cnn(features: dict[str, Any], split: dict[str, Any],
                         model_params: dict[str, Any], params: dict[str, Any]) -> tuple:
    """The supervised 1-D CNN from scratch on all training labels."""
    config = from_params(P.SupervisedParams, params, path="afm.supervised")
    model_config = _model_config(features, model_params)
    model = build_model(P.ARCHITECTURE, model_config, seed=config.fit.seed)
    with seeded_global_rng(config.fit.seed), torch_threads(config.num_threads):
        history = train_classifier(model, _part(features, split["labelled"]["100pc"]),
                                   _part(features, split["val"]), config.classifier, config.fit,
                                   scores=_macro_f1)
    return _trained(to_bundle(model, P.ARCHITECTURE, model_config), history, "supervised_cnn")


def evaluate_classifier(features: dict[str, Any], classifier: dict[str, Any],
                        split: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Test-set predictions (with embeddings, for the t-SNE) and scores."""
    x, y = _part(features, split["test"])
    model = from_bundle(classifier)
    embeddings = embed(model, x)
    with torch.no_grad():
        predicted = model.head(embeddings).argmax(dim=1).numpy()
    return ({"y_true": y.numpy(), "y_pred": predicted, "embeddings": embeddings.numpy()},
            _scores(y.numpy(), predicted))


def tune_peak_detector(features: dict[str, Any], split: dict[str, Any],
                       preprocessing: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The find_peaks baseline's prominence and contact zone, tuned on the training curves."""
    steps = from_params(P.PreprocessingParams, preprocessing, path="afm.preprocessing").steps
    x, y = _part(features, split["train"])
    return force_curves.tune_find_peaks(
        x[:, 0].numpy(), y.numpy(), contact_index=force_curves.aligned_contact_index(
            steps, x.shape[-1]),
        grid=from_params(force_curves.PeakDetectorGrid, params, path="afm.find_peaks"),
        score=lambda t, p: _scores(t, p)["macro_f1"])


def evaluate_peak_detector(features: dict[str, Any], split: dict[str, Any],
                           detector: dict[str, Any]) -> dict[str, float]:
    """Test-set scores of the tuned detector."""
    x, y = _part(features, split["test"])
    return _scores(y.numpy(), force_curves.find_peaks_predict(x[:, 0].numpy(), detector)[0])


def report_afm_metrics(ingestion_report: dict[str, Any], find_peaks: dict[str, float],
                       supervised: dict[str, float], **variants: dict[str, float]
                       ) -> tuple[dict[str, float], dict[str, Any]]:
    """The flat ``afm.*`` figures (docs/afm.md): the main variant's scores as the headline,
    the baselines, each variant's macro-F1 and single-rupture F1, the ingestion counts."""
    metrics = ablation_report(
        "afm", headline=variants[MAIN_VARIANT], variants=variants,
        baselines={"find_peaks": find_peaks, "supervised_cnn": supervised},
        variant_figures=("macro_f1", "single_rupture.f1"),
        counts={"ingestion.curves": ingestion_report["curves"],
                "ingestion.bad_files": len(ingestion_report["bad_files"])})
    return metrics, final_metrics_as_steps(metrics)


def plot_example_curves(features: dict[str, Any], split: dict[str, Any],
                        detector: dict[str, Any], params: dict[str, Any]) -> Figure:
    """Test curves per class with the find_peaks events marked and its predicted class."""
    config = from_params(P.PlotParams, params, path="afm.plots")
    x, y = _part(features, split["test"])
    predicted, events = force_curves.find_peaks_predict(x[:, 0].numpy(), detector)
    return example_curves_figure(x[:, 0].numpy(), y.numpy(), events, class_names=AFM_CLASSES,
                                 per_class=config.examples_per_class, predicted=predicted,
                                 title="Test curves; triangles: find_peaks events")


def plot_embedding_tsne(predictions: dict[str, Any], params: dict[str, Any]) -> Figure:
    """t-SNE of the main model's test embeddings, coloured by true class."""
    config = from_params(P.PlotParams, params, path="afm.plots")
    return tsne_figure(predictions["embeddings"], np.asarray(AFM_CLASSES)[predictions["y_true"]],
                       title=f"AFM {MAIN_VARIANT} test embeddings", seed=config.seed,
                       perplexity=config.tsne_perplexity, max_iter=config.tsne_iterations)


def plot_confusion(predictions: dict[str, Any]) -> Figure:
    """Row-normalised test confusion matrix of the main model."""
    return confusion_matrix_figure(predictions["y_true"], predictions["y_pred"],
                                   class_names=list(AFM_CLASSES), normalize=True,
                                   title=f"AFM {MAIN_VARIANT} (test)")
