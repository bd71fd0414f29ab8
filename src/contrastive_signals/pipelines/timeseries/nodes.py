"""Nodes of the ``timeseries`` pipeline: UCR/UEA sets and MNIST-1D, pretraining by any method
on any series encoder, TS2Vec's SVM protocol, linear probes, the raw 1-NN floor, t-SNE plots
and one flat report. The methods and the protocol live in the library."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.data.mnist1d_data import generate_mnist1d
from contrastive_signals.methods.series import SeriesPretrainParams, pretrain_series
from contrastive_signals.methods.supervised import ClassifierMethod
from contrastive_signals.methods.train import train_method
from contrastive_signals.metrics.probes import accuracy, linear_probe_predict
from contrastive_signals.metrics.report import merge_flat_reports, reference_table
from contrastive_signals.metrics.svm_protocol import nearest_neighbour_predict, protocol_accuracies
from contrastive_signals.models.registry import build_model, from_bundle, to_bundle
from contrastive_signals.models.ts_encoders import encode_instances
from contrastive_signals.plots.ts_embeddings import tsne_panels_figure
from contrastive_signals.training.device import seeded_global_rng, torch_threads
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

from .params import Mnist1dParams, UcrParams

logger = logging.getLogger(__name__)


def _ucr_params(params: dict[str, Any]) -> tuple[UcrParams, dict[str, SeriesPretrainParams]]:
    config = from_params(UcrParams, params, path="timeseries.ucr")
    return config, {name: from_params(SeriesPretrainParams, values,
                                      path=f"timeseries.ucr.methods.{name}")
                    for name, values in config.methods.items()}


def _all_steps(x: torch.Tensor) -> torch.Tensor:
    return torch.ones(x.shape[:2], dtype=torch.bool)


def _pretrain(x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
              params: SeriesPretrainParams, *, name: str) -> tuple[dict[str, Any], dict, float]:
    """``(bundle, history shaped for MLflow, seconds)`` of one pretraining run."""
    start = time.perf_counter()
    encoder, result = pretrain_series(x, mask, params, labels=labels, name=name)
    seconds = time.perf_counter() - start
    logger.info("%s: pretrained in %.1f s", name, seconds)
    bundle = to_bundle(encoder, params.architecture, {"in_channels": x.shape[2], **params.encoder})
    return bundle, history_as_metric_steps({"train_loss": result.history["train_loss"]},
                                           prefix=name), seconds


def load_ucr_datasets(archive: dict[str, Callable[[], dict[str, Any]]],
                      params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The parameter's datasets from the archive (user folder, then aeon's bundled sets),
    z-scored as ``standardise`` says, as tensors: ``{name: {"x_train" [N, T, C],
    "mask_train" [N, T], "y_train" [N], "x_test", ..., "classes"}}``.

    Raises:
        KeyError: for a name the archive lacks, listing the known names.
    """
    config, _ = _ucr_params(params)
    unknown = [name for name in config.datasets if name not in archive]
    if unknown:
        raise KeyError(f"timeseries.ucr.datasets: unknown UCR/UEA dataset(s) {unknown}; known "
                       f"datasets: {sorted(archive)} (place others under data/01_raw/ucr/<Name>/)")
    return {name: {key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
                   for key, value in archive[name](standardise=config.standardise).items()}
            for name in config.datasets}


def pretrain_ts_encoders(ucr_data: dict[str, dict[str, Any]], params: dict[str, Any]
                         ) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, Any]]:
    """Pretrain every method on every dataset's training series (labels only for the methods
    that read them: SupCon, triplet). Returns bundles ``{dataset: {method: bundle}}``,
    ``{"ts.<Dataset>.<method>.pretrain_seconds"}`` and the loss histories for MLflow."""
    config, methods = _ucr_params(params)
    bundles: dict[str, dict[str, Any]] = {dataset: {} for dataset in ucr_data}
    seconds, histories = {}, {}
    with torch_threads(config.num_threads):
        for dataset, data in ucr_data.items():
            for method_name, method in methods.items():
                name = f"ts.{dataset}.{method_name}"
                bundles[dataset][method_name], history, seconds[f"{name}.pretrain_seconds"] = \
                    _pretrain(data["x_train"], data["mask_train"], data["y_train"], method,
                              name=name)
                histories.update(history)
    return bundles, seconds, histories


def evaluate_ts_encoders(ucr_data: dict[str, dict[str, Any]],
                         bundles: dict[str, dict[str, Any]], params: dict[str, Any]
                         ) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """TS2Vec's SVM protocol and a linear probe on frozen, max-pooled embeddings, plus 1-NN on
    the raw series; ``ts.<Dataset>.best.svm.acc`` repeats the default method's SVM figure.
    Returns the flat metrics and the default method's test embeddings for the plots."""
    config, methods = _ucr_params(params)
    metrics: dict[str, float] = {}
    embeddings = {}
    pool_padding = config.evaluation.pooling == "padded_window"
    with torch_threads(config.num_threads):
        for dataset, data in ucr_data.items():
            y_train, y_test = data["y_train"].numpy(), data["y_test"].numpy()
            raw = nearest_neighbour_predict(data["x_train"].numpy(), y_train,
                                            data["x_test"].numpy())
            metrics[f"ts.{dataset}.raw_1nn.acc"] = accuracy(y_test, raw)
            for method_name in methods:
                encoder = from_bundle(bundles[dataset][method_name], modality="series")
                train, test = (encode_instances(encoder, data[f"x_{split}"], data[f"mask_{split}"],
                                                pool_padding=pool_padding).numpy()
                               for split in ("train", "test"))
                scores = protocol_accuracies(train, y_train, test, y_test,
                                             probe_c=config.evaluation.probe_c)
                metrics.update({f"ts.{dataset}.{method_name}.{k}": v for k, v in scores.items()})
                if method_name == config.default_method:
                    embeddings[dataset] = {"embeddings": test, "labels": y_test}
            metrics[f"ts.{dataset}.best.svm.acc"] = metrics[
                f"ts.{dataset}.{config.default_method}.svm.acc"]
    return metrics, embeddings


def plot_ts_embeddings(embeddings: dict[str, dict[str, np.ndarray]],
                       params: dict[str, Any]) -> Figure:
    """One t-SNE panel per dataset of the default method's test embeddings."""
    config, _ = _ucr_params(params)
    return tsne_panels_figure(
        {name: (e["embeddings"], e["labels"]) for name, e in embeddings.items()},
        seed=config.evaluation.seed, perplexity=config.evaluation.tsne_perplexity,
        max_iter=config.evaluation.tsne_iterations,
        title=f"t-SNE of {config.default_method} test embeddings")


def ts_results_table(metrics: dict[str, float], seconds: dict[str, float],
                     params: dict[str, Any]) -> str:
    """Markdown table: per dataset and method, our accuracies beside the targets and the
    published figures, and pretraining seconds as a ratio to TS2Vec's reference seconds."""
    config, methods = _ucr_params(params)
    return reference_table(metrics, seconds, prefix="ts", datasets=config.datasets,
                           methods=list(methods), targets=config.targets,
                           published=config.published, reference_seconds=config.reference_seconds)


def generate_mnist1d_data(params: dict[str, Any]) -> dict[str, torch.Tensor]:
    """MNIST-1D from the package's generator: ``x_*`` ``[N, 40, 1]``, ``y_*`` ``[N]``."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    data = generate_mnist1d(seed=config.seed, num_samples=config.num_samples)
    return {key: torch.from_numpy(value[..., None] if key.startswith("x") else value)
            for key, value in data.items()}


def pretrain_mnist1d_simclr(data: dict[str, torch.Tensor], params: dict[str, Any]
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``simclr`` block's method on the MNIST-1D training signals (labels only for the
    methods that read them). Returns the encoder bundle and its loss history for MLflow."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    x = data["x_train"]
    with torch_threads(config.num_threads):
        bundle, history, _ = _pretrain(x, _all_steps(x), data["y_train"], config.simclr,
                                       name="mnist1d.simclr")
    return bundle, history


def evaluate_mnist1d_simclr(data: dict[str, torch.Tensor], bundle: dict[str, Any],
                            params: dict[str, Any]) -> dict[str, float]:
    """``mnist1d.simclr.linear.acc``: linear probe on the frozen, max-pooled embeddings."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    encoder = from_bundle(bundle, modality="series")
    with torch_threads(config.num_threads):
        train, test = (encode_instances(encoder, data[k], _all_steps(data[k])).numpy()
                       for k in ("x_train", "x_test"))
    predicted = linear_probe_predict(train, data["y_train"].numpy(), test, c=config.probe_c)
    return {"mnist1d.simclr.linear.acc": accuracy(data["y_test"].numpy(), predicted)}


def train_mnist1d_supervised(data: dict[str, torch.Tensor], params: dict[str, Any]
                             ) -> dict[str, float]:
    """``mnist1d.supervised.acc``: the same kind of encoder trained end to end with labels."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    s, (x, y) = config.supervised, (data["x_train"], data["y_train"])
    method = ClassifierMethod(s.classifier, modality="series", output="per_step",
                              num_classes=int(y.max()) + 1, self_classifying=False)
    with seeded_global_rng(s.fit.seed), torch_threads(config.num_threads):
        encoder = build_model(s.architecture, {"in_channels": x.shape[2], **s.encoder},
                              seed=s.fit.seed)
        model = train_method(method, encoder, x=x, labels=y, mask=_all_steps(x),
                             config=replace(s.fit, name="mnist1d.supervised")).model
        with torch.no_grad():
            predicted = model(data["x_test"], _all_steps(data["x_test"])).argmax(1).numpy()
    return {"mnist1d.supervised.acc": accuracy(data["y_test"].numpy(), predicted)}


def merge_metric_reports(*reports: dict[str, float]) -> tuple[dict[str, float],
                                                               dict[str, dict[str, float]]]:
    """One flat report from several flat ``{name: value}`` dicts, as JSON and for MLflow;
    a name in two reports is an error."""
    merged = merge_flat_reports(*reports)
    return merged, final_metrics_as_steps(merged)
