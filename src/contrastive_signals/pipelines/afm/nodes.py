"""Nodes of the ``afm`` pipeline: simulate -> ingest through afmformats -> split -> preprocess
(with / without the derivative channel) -> pretrained / fresh encoders -> triplet fine-tuning +
head per ablation variant, a supervised CNN and a tuned find_peaks detector -> metrics and
plots. Methods, data shaping and scores live in the library; nodes unpack parameters."""

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
from contrastive_signals.signal.force_curves import (
    PeakDetectorGrid,
    aligned_contact_index,
    find_peaks_predict,
    tune_find_peaks,
)
from contrastive_signals.signal.steps import apply_feature_steps
from contrastive_signals.training.device import seeded_global_rng, torch_threads
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps
from contrastive_signals.training.validation import knn_validation

from .params import (
    ARCHITECTURE,
    FinetuningParams,
    PlotParams,
    PreprocessingParams,
    PretrainingParams,
    SplitParams,
    SupervisedParams,
)

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


def simulate_afm_curves(params: dict[str, Any]) -> dict[str, Any]:
    """Labelled retract curves for the catalog to write as afmformats HDF5 files."""
    config = from_params(AfmSimulationConfig, params, path="afm.simulation")
    return {"curves": simulate_curves(config), "sampling_rate": config.sampling_rate}


def ingest_afm_curves(outcomes: list[dict[str, Any]], simulated_files: list[str],
                      params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every curve read back from the AFM folder (``simulated_files`` only orders this node
    after the simulator) on a common distance grid, tensors; and the ingestion report."""
    config = from_params(IngestionParams, params, path="afm.ingestion")
    data, report = curves_dataset(outcomes, config)
    logger.info("AFM ingestion: %d curves from %d files (%d bad, %d labelled)", report["curves"],
                report["files"], len(report["bad_files"]), report["labelled_curves"])
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for k, v in data.items()}, report


def split_afm_curves(curves: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Stratified train / val / test split of the labelled curves, the unlabelled ones (for
    pretraining only), and the ablation's labelled training subsets (``5pc``, ``100pc``)."""
    return split_with_unlabelled(curves["labels"].numpy(),
                                 from_params(SplitParams, params, path="afm.split"))


def preprocess_afm_curves(curves: dict[str, Any], params: dict[str, Any], *, derivative: bool
                          ) -> dict[str, Any]:
    """The declared preprocessing steps on every curve; ``derivative=False`` drops the
    ``derivative_channel`` step. Returns ``{"curves": [N, C, L] float32, "labels": [N]}``."""
    config = from_params(PreprocessingParams, params, path="afm.preprocessing")
    features, _ = apply_feature_steps(curves["force"].numpy(), config.chosen(derivative=derivative),
                                      sampling_rate=1.0)
    return {"curves": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
            "labels": curves["labels"].clone()}


def _model_config(features: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    _, channels, length = features["curves"].shape
    return from_params(CurveCNNParams, params, path="afm.model").config(
        in_channels=channels, length=length, num_classes=len(AFM_CLASSES))


def pretrain_encoder(features: dict[str, Any], split: dict[str, Any],
                     model_params: dict[str, Any], params: dict[str, Any], *, name: str
                     ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """``afm.pretraining.method`` on the training curves (SimCLR: and the unlabelled ones,
    labels unused); the validation labels only monitor a kNN probe."""
    config = from_params(PretrainingParams, params, path="afm.pretraining")
    model_config = _model_config(features, model_params)
    labelled = config.requires.needs_labels
    x, y = _part(features, split["train"] + ([] if labelled else split["unlabelled"]))
    views = replace(config.augmentation, derivative_channel=model_config["in_channels"] == 2)
    method = config.build(get_entry(ARCHITECTURE), views=views, seed=config.fit.seed)
    with seeded_global_rng(config.fit.seed), torch_threads(config.num_threads):
        result = train_method(
            method, build_model(ARCHITECTURE, model_config, seed=config.fit.seed), x=x,
            labels=y if labelled else None, batch_size=config.batch_size, config=config.fit,
            validate=knn_validation(*_part(features, split["train"]),
                                    *_part(features, split["val"])))
    bundle = to_bundle(method.export(result.model), ARCHITECTURE, model_config)
    return bundle, result.history, history_as_metric_steps(result.history, prefix=f"afm.{name}")


def initial_encoder(features: dict[str, Any], model_params: dict[str, Any],
                    params: dict[str, Any]) -> dict[str, Any]:
    """A freshly initialised encoder (the ablation's no-pretraining start), seeded by
    ``afm.finetuning.fit.seed``."""
    config = from_params(FinetuningParams, params, path="afm.finetuning")
    model_config = _model_config(features, model_params)
    return to_bundle(build_model(ARCHITECTURE, model_config, seed=config.fit.seed),
                     ARCHITECTURE, model_config)


def finetune_classifier(features: dict[str, Any], encoder: dict[str, Any], split: dict[str, Any],
                        params: dict[str, Any], *, label_subset: str, name: str
                        ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Triplet fine-tuning on the ``label_subset`` training labels, then the classifier head."""
    config = from_params(FinetuningParams, params, path="afm.finetuning")
    model = from_bundle(encoder)
    with seeded_global_rng(config.fit.seed), torch_threads(config.num_threads):
        history = triplet_then_head(
            model, _part(features, split["labelled"][label_subset]), _part(features, split["val"]),
            triplet=config.triplet, triplet_fit=replace(config.fit, name="afm_triplet"),
            head=replace(config.head, fit=replace(config.head.fit, name="afm_head")),
            scores=_macro_f1)
    bundle = to_bundle(model, ARCHITECTURE, encoder["config"])
    return bundle, history, history_as_metric_steps(history, prefix=f"afm.{name}")


def train_supervised_cnn(features: dict[str, Any], split: dict[str, Any],
                         model_params: dict[str, Any], params: dict[str, Any]
                         ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """The supervised 1-D CNN from scratch on all training labels."""
    config = from_params(SupervisedParams, params, path="afm.supervised")
    model_config = _model_config(features, model_params)
    model = build_model(ARCHITECTURE, model_config, seed=config.fit.seed)
    with seeded_global_rng(config.fit.seed), torch_threads(config.num_threads):
        history = train_classifier(model, _part(features, split["labelled"]["100pc"]),
                                   _part(features, split["val"]), config.classifier, config.fit,
                                   scores=_macro_f1)
    bundle = to_bundle(model, ARCHITECTURE, model_config)
    return bundle, history, history_as_metric_steps(history, prefix="afm.supervised_cnn")


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
    steps = from_params(PreprocessingParams, preprocessing, path="afm.preprocessing").steps
    x, y = _part(features, split["train"])
    return tune_find_peaks(x[:, 0].numpy(), y.numpy(),
                           contact_index=aligned_contact_index(steps, x.shape[-1]),
                           grid=from_params(PeakDetectorGrid, params, path="afm.find_peaks"),
                           score=lambda t, p: _scores(t, p)["macro_f1"])


def evaluate_peak_detector(features: dict[str, Any], split: dict[str, Any],
                           detector: dict[str, Any]) -> dict[str, float]:
    """Test-set scores of the tuned detector."""
    x, y = _part(features, split["test"])
    return _scores(y.numpy(), find_peaks_predict(x[:, 0].numpy(), detector)[0])


def report_afm_metrics(ingestion_report: dict[str, Any], find_peaks: dict[str, float],
                       supervised: dict[str, float], **variants: dict[str, float]
                       ) -> tuple[dict[str, float], dict[str, Any]]:
    """The flat ``afm.*`` figures: the main variant's scores as the headline, the baselines
    (``find_peaks``, ``supervised_cnn``), each variant's macro-F1 and single-rupture F1, and
    the ingestion counts."""
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
    config = from_params(PlotParams, params, path="afm.plots")
    x, y = _part(features, split["test"])
    predicted, events = find_peaks_predict(x[:, 0].numpy(), detector)
    return example_curves_figure(x[:, 0].numpy(), y.numpy(), events, class_names=AFM_CLASSES,
                                 per_class=config.examples_per_class, predicted=predicted,
                                 title="Test curves; triangles: find_peaks events")


def plot_embedding_tsne(predictions: dict[str, Any], params: dict[str, Any]) -> Figure:
    """t-SNE of the main model's test embeddings, coloured by true class."""
    config = from_params(PlotParams, params, path="afm.plots")
    return tsne_figure(predictions["embeddings"], np.asarray(AFM_CLASSES)[predictions["y_true"]],
                       title=f"AFM {MAIN_VARIANT} test embeddings", seed=config.seed,
                       perplexity=config.tsne_perplexity, max_iter=config.tsne_iterations)


def plot_confusion(predictions: dict[str, Any]) -> Figure:
    """Row-normalised test confusion matrix of the main model."""
    return confusion_matrix_figure(predictions["y_true"], predictions["y_pred"],
                                   class_names=list(AFM_CLASSES), normalize=True,
                                   title=f"AFM {MAIN_VARIANT} (test)")
