"""Nodes of the ``timeseries`` pipeline: UCR/UEA sets and MNIST-1D, contrastive pretraining,
TS2Vec's SVM protocol, linear probes, the raw 1-NN floor, t-SNE plots and one flat report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.data.mnist1d_data import generate_mnist1d
from contrastive_signals.metrics.probes import accuracy, linear_probe_predict
from contrastive_signals.metrics.report import to_markdown
from contrastive_signals.metrics.svm_protocol import (
    nearest_neighbour_predict,
    svm_protocol_predict,
)
from contrastive_signals.models.ts_encoders import (
    encode_instances,
    ts_encoder_bundle,
    ts_encoder_from_bundle,
)
from contrastive_signals.plots.ts_embeddings import tsne_panels_figure
from contrastive_signals.training.device import torch_threads
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

from .params import MethodParams, Mnist1dParams, UcrParams
from .training import pretrain_encoder, train_supervised_classifier

logger = logging.getLogger(__name__)


def _ucr_params(params: dict[str, Any]) -> tuple[UcrParams, dict[str, MethodParams]]:
    config = from_params(UcrParams, params, path="timeseries.ucr")
    methods = {name: from_params(MethodParams, values, path=f"timeseries.ucr.methods.{name}")
               for name, values in config.methods.items()}
    return config, methods


def load_ucr_datasets(archive: dict[str, Callable[[], dict[str, Any]]],
                      params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Read the parameter's datasets from the archive (user folder, then aeon's bundled sets),
    z-scored as ``standardise`` says (``auto``: as TS2Vec's loaders, see
    :func:`contrastive_signals.data.ucr.should_standardise`).

    Returns:
        ``{name: {"x_train" [N, T, C], "mask_train" [N, T], "y_train" [N], "x_test", ...,
        "classes"}}`` as tensors.

    Raises:
        KeyError: for a name the archive lacks, listing the known names.
    """
    config, _ = _ucr_params(params)
    unknown = [name for name in config.datasets if name not in archive]
    if unknown:
        raise KeyError(f"timeseries.ucr.datasets: unknown UCR/UEA dataset(s) {unknown}; known "
                       f"datasets: {sorted(archive)} (place others under data/01_raw/ucr/<Name>/)")
    out = {}
    for name in config.datasets:
        data = archive[name](standardise=config.standardise)
        out[name] = {key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
                     for key, value in data.items()}
    return out


def pretrain_ts_encoders(ucr_data: dict[str, dict[str, Any]], params: dict[str, Any]
                         ) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, Any]]:
    """Pretrain every method on every dataset's training series (labels unused).

    Returns:
        bundles ``{dataset: {method: bundle}}``, ``{"ts.<Dataset>.<method>.pretrain_seconds"}``
        and the loss histories shaped for MLflow.
    """
    config, methods = _ucr_params(params)
    bundles, seconds, histories = {}, {}, {}
    with torch_threads(config.num_threads):
        for dataset, data in ucr_data.items():
            bundles[dataset] = {}
            for method_name, method in methods.items():
                name = f"ts.{dataset}.{method_name}"
                start = time.perf_counter()
                encoder, result = pretrain_encoder(data["x_train"], data["mask_train"], method,
                                                   name=name)
                seconds[f"{name}.pretrain_seconds"] = time.perf_counter() - start
                logger.info("%s: pretrained in %.1f s", name, seconds[f"{name}.pretrain_seconds"])
                bundles[dataset][method_name] = ts_encoder_bundle(
                    encoder, method.architecture, data["x_train"].shape[2], method.encoder)
                histories.update(history_as_metric_steps(
                    {"train_loss": result.history["train_loss"]}, prefix=name))
    return bundles, seconds, histories


def evaluate_ts_encoders(ucr_data: dict[str, dict[str, Any]],
                         bundles: dict[str, dict[str, Any]], params: dict[str, Any]
                         ) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """TS2Vec's SVM protocol and a linear probe on frozen, max-pooled embeddings, plus 1-NN on
    the raw series; ``ts.<Dataset>.best.svm.acc`` repeats the default method's SVM figure.

    Returns:
        flat metrics and ``{dataset: {"embeddings" [M, D], "labels" [M]}}`` (default method,
        test split) for the plots.
    """
    config, methods = _ucr_params(params)
    metrics: dict[str, float] = {}
    embeddings = {}
    with torch_threads(config.num_threads):
        pool_padding = config.evaluation.pooling == "padded_window"
        for dataset, data in ucr_data.items():
            y_train, y_test = data["y_train"].numpy(), data["y_test"].numpy()
            raw = nearest_neighbour_predict(data["x_train"].numpy(), y_train,
                                            data["x_test"].numpy())
            metrics[f"ts.{dataset}.raw_1nn.acc"] = accuracy(y_test, raw)
            for method_name in methods:
                encoder = ts_encoder_from_bundle(bundles[dataset][method_name])
                train, test = (encode_instances(encoder, data[f"x_{split}"],
                                                data[f"mask_{split}"],
                                                pool_padding=pool_padding).numpy()
                               for split in ("train", "test"))
                svm, _ = svm_protocol_predict(train, y_train, test)
                linear = linear_probe_predict(train, y_train, test, c=config.evaluation.probe_c)
                metrics[f"ts.{dataset}.{method_name}.svm.acc"] = accuracy(y_test, svm)
                metrics[f"ts.{dataset}.{method_name}.linear.acc"] = accuracy(y_test, linear)
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
    """Markdown table: per dataset and method, our SVM / linear / 1-NN accuracy beside the
    issue's targets and the published figures, and pretraining seconds as a ratio to TS2Vec's reference seconds."""
    config, methods = _ucr_params(params)
    rows = {}
    for dataset in config.datasets:
        for method in methods:
            key = f"ts.{dataset}.{method}"
            reference = config.reference_seconds.get(dataset)
            took = seconds.get(f"{key}.pretrain_seconds")
            rows[f"{dataset} / {method}"] = {
                "svm acc": metrics.get(f"{key}.svm.acc"),
                "linear acc": metrics.get(f"{key}.linear.acc"),
                "raw 1-NN acc": metrics.get(f"ts.{dataset}.raw_1nn.acc"),
                "target (TS2Vec here)": config.targets.get(dataset),
                "published": config.published.get(dataset),
                "pretrain s": took,
                "TS2Vec s": reference,
                "time ratio": took / reference if took is not None and reference else None,
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "dataset / method"
    return to_markdown(table, float_format=".3f") + "\n"


def generate_mnist1d_data(params: dict[str, Any]) -> dict[str, torch.Tensor]:
    """MNIST-1D from the package's generator: ``x_*`` ``[N, 40, 1]``, ``y_*`` ``[N]``."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    data = generate_mnist1d(seed=config.seed, num_samples=config.num_samples)
    return {key: torch.from_numpy(value[..., None] if key.startswith("x") else value)
            for key, value in data.items()}


def pretrain_mnist1d_simclr(data: dict[str, torch.Tensor], params: dict[str, Any]
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """SimCLR (NT-Xent on augmented views) on the MNIST-1D training signals, labels unused.

    Returns:
        the encoder bundle and its loss history shaped for MLflow.
    """
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    x = data["x_train"]
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    with torch_threads(config.num_threads):
        encoder, result = pretrain_encoder(x, mask, config.simclr, name="mnist1d.simclr")
    bundle = ts_encoder_bundle(encoder, config.simclr.architecture, x.shape[2],
                               config.simclr.encoder)
    return bundle, history_as_metric_steps({"train_loss": result.history["train_loss"]},
                                           prefix="mnist1d.simclr")


def evaluate_mnist1d_simclr(data: dict[str, torch.Tensor], bundle: dict[str, Any],
                            params: dict[str, Any]) -> dict[str, float]:
    """``mnist1d.simclr.linear.acc``: linear probe on the frozen, max-pooled embeddings."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    encoder = ts_encoder_from_bundle(bundle)
    with torch_threads(config.num_threads):
        train, test = (encode_instances(encoder, data[k], torch.ones(data[k].shape[:2],
                                                                     dtype=torch.bool)).numpy()
                       for k in ("x_train", "x_test"))
    predicted = linear_probe_predict(train, data["y_train"].numpy(), test, c=config.probe_c)
    return {"mnist1d.simclr.linear.acc": accuracy(data["y_test"].numpy(), predicted)}


def train_mnist1d_supervised(data: dict[str, torch.Tensor], params: dict[str, Any]
                             ) -> dict[str, float]:
    """``mnist1d.supervised.acc``: the same kind of encoder trained end to end with labels."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    s = config.supervised
    with torch_threads(config.num_threads):
        model = train_supervised_classifier(
            data["x_train"], data["y_train"], architecture=s.architecture,
            encoder_config=s.encoder, epochs=s.epochs, batch_size=s.batch_size,
            learning_rate=s.learning_rate, weight_decay=s.weight_decay, seed=s.seed,
            name="mnist1d.supervised")
        x = data["x_test"]
        with torch.no_grad():
            predicted = model(x, torch.ones(x.shape[:2], dtype=torch.bool)).argmax(1).numpy()
    return {"mnist1d.supervised.acc": accuracy(data["y_test"].numpy(), predicted)}


def merge_metric_reports(*reports: dict[str, float]) -> tuple[dict[str, float],
                                                               dict[str, dict[str, float]]]:
    """One flat report from several flat ``{name: value}`` dicts, as JSON and for MLflow.

    Raises:
        ValueError: when two reports define the same metric name.
    """
    merged: dict[str, float] = {}
    for report in reports:
        clash = sorted(set(merged) & set(report))
        if clash:
            raise ValueError(f"metric name(s) {clash} appear in more than one report")
        merged.update({name: float(value) for name, value in report.items()})
    return merged, final_metrics_as_steps(merged)
