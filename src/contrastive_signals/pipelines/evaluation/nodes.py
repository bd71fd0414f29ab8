"""Evaluation nodes: frozen-embedding probes, retrieval, plots and the results report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params, require_at_least, require_positive
from contrastive_signals.metrics.probes import accuracy, embedding_scores, label_efficiency
from contrastive_signals.metrics.report import flatten_metrics, results_table, to_markdown
from contrastive_signals.models.registry import embed, from_bundle
from contrastive_signals.plots.attention import attention_figure
from contrastive_signals.plots.confusion import confusion_matrix_figure
from contrastive_signals.plots.embeddings import tsne_figure
from contrastive_signals.plots.history import training_curves_figure
from contrastive_signals.training.history import final_metrics_as_steps

# The validation-split twin of ``linear_probe_10pc.acc`` (reported as ``<encoder>.<this>``).
VALIDATION_PROBE = "linear_probe_10pc.val_acc"
# Column order of the results table; names are the documented metric names' suffixes.
METRIC_COLUMNS = (
    "linear_probe.acc", "linear_probe_10pc.acc", "linear_probe_10pc.std", "knn.acc", "rvfl.acc",
    "recall_at_1", "recall_at_5", "map", "test.acc",
)


@dataclass(frozen=True)
class EvaluationParams:
    seed: int = 0
    knn_k: int = 5
    knn_metric: str = "cosine"
    probe_c: float = 1.0
    probe_max_iter: int = 3000
    rvfl_hidden_dim: int = 512
    rvfl_ridge: float = 1.0
    labels_per_class: int = 10
    label_subsets: int = 5
    retrieval_metric: str = "cosine"
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 1000

    def __post_init__(self) -> None:
        if self.tsne_iterations < 250:
            raise ValueError(f"tsne_iterations must be >= 250 (scikit-learn's minimum), got {self.tsne_iterations}")
        require_at_least(self, ("knn_k", "rvfl_hidden_dim", "labels_per_class", "label_subsets"), 1)
        require_positive(self, ("probe_c", "rvfl_ridge", "tsne_perplexity"))


def _split_arrays(features: dict[str, dict[str, torch.Tensor]], encode) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for part in ("train", "val", "test"):
        arrays[f"{part}_x"] = encode(features[part]["images"]).numpy().astype(np.float64)
        arrays[f"{part}_y"] = features[part]["labels"].numpy()
    return arrays


def pixel_embeddings(features: dict[str, dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    """The raw-pixel baseline: flattened images ``[N, C*H*W]`` of the train, val and test
    splits."""
    return _split_arrays(features, lambda images: images.flatten(1))


def encoder_embeddings(features: dict[str, dict[str, torch.Tensor]], bundle: dict[str, Any]
                       ) -> dict[str, np.ndarray]:
    """Frozen embeddings ``[N, D]`` of the train, val and test splits under a trained
    encoder."""
    model = from_bundle(bundle)
    return _split_arrays(features, lambda images: embed(model, images))


def evaluate_embeddings(embeddings: dict[str, np.ndarray], params: dict[str, Any]) -> dict[str, Any]:
    """Probes (linear, kNN, RVFL), label efficiency and test-set retrieval of one encoder,
    plus the label-efficiency probe on the validation split (``linear_probe_10pc.val_acc``:
    the same label subsets, scored on the validation digits; what sweeps optimise, so that
    the test split stays unseen until the search is over).

    Returns:
        ``{"metrics": {metric: value}, "probe_predictions": [N_test], "labels": [N_test]}``.
    """
    config = from_params(EvaluationParams, params, path="evaluation")
    settings = {k: v for k, v in asdict(config).items()
                if k not in ("tsne_perplexity", "tsne_iterations")}
    metrics, probe = embedding_scores(*(embeddings[k] for k in ("train_x", "train_y", "test_x",
                                                                "test_y")), **settings)
    if len(embeddings.get("val_y", ())):
        few = label_efficiency(embeddings["train_x"], embeddings["train_y"], embeddings["val_x"],
                               embeddings["val_y"], per_class=config.labels_per_class,
                               repeats=config.label_subsets, seed=config.seed, c=config.probe_c)
        metrics[VALIDATION_PROBE] = float(few["mean"])
    return {"metrics": metrics, "probe_predictions": probe, "labels": embeddings["test_y"]}


def score_classifier(features: dict[str, dict[str, torch.Tensor]], bundle: dict[str, Any]) -> dict[str, Any]:
    """Test accuracy of a trained classifier's own predictions."""
    model = from_bundle(bundle)
    with torch.no_grad():
        logits = torch.cat([model(chunk) for chunk in features["test"]["images"].split(512)])
    predictions = logits.argmax(1).numpy()
    labels = features["test"]["labels"].numpy()
    return {"metrics": {"test.acc": accuracy(labels, predictions)},
            "predictions": predictions, "labels": labels}


def plot_embedding_tsne(embeddings: dict[str, np.ndarray], params: dict[str, Any], *, name: str) -> Figure:
    """t-SNE of the test embeddings coloured by label."""
    config = from_params(EvaluationParams, params, path="evaluation")
    return tsne_figure(embeddings["test_x"], embeddings["test_y"], title=f"{name}: t-SNE of test embeddings",
                       seed=config.seed, perplexity=config.tsne_perplexity,
                       max_iter=config.tsne_iterations)


def plot_probe_confusion(evaluation: dict[str, Any], *, name: str) -> Figure:
    """Confusion matrix of the linear probe on the test split."""
    return confusion_matrix_figure(evaluation["labels"], evaluation["probe_predictions"],
                                   title=f"{name}: linear probe confusion (test)")


def plot_classifier_confusion(scores: dict[str, Any], *, name: str) -> Figure:
    """Confusion matrix of a supervised classifier on the test split."""
    return confusion_matrix_figure(scores["labels"], scores["predictions"],
                                   title=f"{name}: classifier confusion (test)")


def plot_attention_maps(features: dict[str, dict[str, torch.Tensor]], bundle: dict[str, Any], *,
                        name: str, count: int = 8) -> Figure:
    """The first ``count`` test digits beside their class-token attention maps (mean over heads,
    last block) under a trained Vision Transformer."""
    model = from_bundle(bundle, modality="image")
    images, labels = features["test"]["images"][:count], features["test"]["labels"][:count]
    with torch.no_grad():
        maps = model.attention_maps(images)
    return attention_figure(images[:, 0].numpy(), maps.numpy(), labels=labels.numpy(),
                            title=f"{name}: class-token attention (test digits)")


def plot_training_curves(**histories: dict[str, list[float]]) -> Figure:
    """Training-loss (and validation) curves of every trained model, one panel each."""
    return training_curves_figure(histories, title="Training curves")


def build_results_report(*, classifiers: tuple[str, ...], **evaluations: dict[str, Any]
                         ) -> tuple[dict[str, float], dict[str, Any], pd.DataFrame, str]:
    """Collect every encoder's metrics into the flat metrics dict and one results table.

    ``evaluations``: each encoder's probe scores by its name, and each classifier's own scores
    as ``<classifier>_classifier_scores``.

    Returns:
        flat metrics ``{"<encoder>.<metric>": value}`` (JSON), the same shaped for MLflow,
        the table as a DataFrame (CSV) and as Markdown.
    """
    own = {name: evaluations.pop(f"{name}_classifier_scores") for name in classifiers}
    rows = {name: dict(evaluation["metrics"]) for name, evaluation in evaluations.items()}
    for name, scores in own.items():
        rows.setdefault(name, {}).update(scores["metrics"])
    # the table holds the test figures; the validation probe is in the flat metrics only
    table = results_table({name: {k: v for k, v in metrics.items() if k != VALIDATION_PROBE}
                           for name, metrics in rows.items()}, columns=list(METRIC_COLUMNS))
    flat = flatten_metrics(rows)
    markdown = to_markdown(table)
    return flat, final_metrics_as_steps(flat), table.reset_index(names="encoder"), markdown
