"""Nodes of the ``timeseries`` pipeline: UCR/UEA sets and MNIST-1D, pretraining by any method
on any series encoder (:mod:`contrastive_signals.methods.series`), TS2Vec's SVM protocol,
linear probes, the raw 1-NN floor, t-SNE plots and one flat report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.data.mnist1d_data import generate_mnist1d
from contrastive_signals.data.ucr import load_named
from contrastive_signals.methods.series import (
    SeriesPretrainParams,
    pretrain_series_bundle,
    train_series_classifier,
)
from contrastive_signals.metrics.probes import accuracy, linear_probe_predict
from contrastive_signals.metrics.report import baseline_table, reference_table
from contrastive_signals.metrics.svm_protocol import (
    nearest_neighbour_predict,
    protocol_accuracies,
    svm_protocol_predict,
)
from contrastive_signals.metrics.ts_baselines import score_baseline, warm_up
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.models.ts_encoders import encode_splits
from contrastive_signals.plots.ts_embeddings import tsne_panels_figure
from contrastive_signals.training.device import available_cores, torch_threads
from contrastive_signals.training.history import history_as_metric_steps

from .params import BaselineParams, Mnist1dParams, UcrParams

logger = logging.getLogger(__name__)


def ucr_params(params: dict[str, Any]) -> tuple[UcrParams, dict[str, SeriesPretrainParams]]:
    config = from_params(UcrParams, params, path="timeseries.ucr")
    return config, {name: from_params(SeriesPretrainParams, values,
                                      path=f"timeseries.ucr.methods.{name}")
                    for name, values in config.methods.items()}


def _pretrain(x: torch.Tensor, mask: torch.Tensor | None, labels: torch.Tensor,
              params: SeriesPretrainParams, *, name: str) -> tuple[dict[str, Any], dict, float]:
    """``(bundle, loss history shaped for MLflow, seconds)`` of one pretraining run."""
    bundle, history, seconds = pretrain_series_bundle(x, mask, params, labels=labels, name=name)
    logger.info("%s: pretrained in %.1f s", name, seconds)
    return bundle, history_as_metric_steps({"train_loss": history["train_loss"]},
                                           prefix=name), seconds


def load_ucr_datasets(archive: dict[str, Callable[..., dict[str, Any]]],
                      params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The parameter's datasets from the archive (user folder, then aeon's bundled sets),
    prepared as ``standardise`` says, as tensors (:func:`~contrastive_signals.data.ucr.load_named`)."""
    config, _ = ucr_params(params)
    return {name: {key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
                   for key, value in data.items()}
            for name, data in load_named(archive, config.datasets,
                                         standardise=config.standardise).items()}


def load_ucr_set(archive: dict[str, Callable[..., dict[str, Any]]], params: dict[str, Any], *,
                 name: str) -> dict[str, dict[str, Any]]:
    """``{name: data}``: one set of ``timeseries.ucr.datasets`` as :func:`load_ucr_datasets`
    loads it (the per-set namespaces ``ucr_<Set>`` of the pipeline)."""
    return load_ucr_datasets(archive, {**params, "datasets": [name]})


def gather_by_set(*parts: dict[str, Any], fields: int) -> tuple[dict[str, Any], ...]:
    """``fields`` dicts, each the union of its per-set dicts: ``parts`` holds, set after set,
    the set's ``fields`` dicts (``{Set: ...}`` or flat ``{metric: value}``); the sets' order
    is kept."""
    if len(parts) % fields:
        raise ValueError(f"gather_by_set: {len(parts)} parts are not whole sets of {fields}")
    merged: list[dict[str, Any]] = [{} for _ in range(fields)]
    for index, part in enumerate(parts):
        merged[index % fields].update(part)
    return tuple(merged)


def pretrain_ts_encoders(ucr_data: dict[str, dict[str, Any]], params: dict[str, Any]
                         ) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, Any]]:
    """Every method on every dataset's training series (labels: SupCon and triplet only):
    bundles ``{dataset: {method: bundle}}``, ``ts.<Dataset>.<method>.pretrain_seconds``, and
    the loss histories for MLflow."""
    config, methods = ucr_params(params)
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
    """TS2Vec's SVM protocol and a linear probe on frozen, max-pooled embeddings, 1-NN on the
    raw series, ``ts.<Dataset>.best.svm.acc`` = the default method's; and the default
    method's test embeddings for the plots."""
    config, methods = ucr_params(params)
    metrics, embeddings = {}, {}
    with torch_threads(config.num_threads):
        for dataset, data in ucr_data.items():
            y_train, y_test = data["y_train"].numpy(), data["y_test"].numpy()
            raw = nearest_neighbour_predict(data["x_train"].numpy(), y_train,
                                            data["x_test"].numpy())
            metrics[f"ts.{dataset}.raw_1nn.acc"] = accuracy(y_test, raw)
            for method_name in methods:
                train, test = (z.numpy() for z in encode_splits(
                    from_bundle(bundles[dataset][method_name], modality="series"), data,
                    pooling=config.evaluation.pooling))
                scores = protocol_accuracies(train, y_train, test, y_test,
                                             probe_c=config.evaluation.probe_c,
                                             n_jobs=available_cores())
                metrics.update({f"ts.{dataset}.{method_name}.{k}": v for k, v in scores.items()})
                if method_name == config.default_method:
                    embeddings[dataset] = {"embeddings": test, "labels": y_test}
            metrics[f"ts.{dataset}.best.svm.acc"] = metrics[
                f"ts.{dataset}.{config.default_method}.svm.acc"]
    return metrics, embeddings


def _baseline_metrics(splits: dict[str, dict[str, Any]], config: BaselineParams, *,
                      prefix: str) -> dict[str, float]:
    """``<prefix>.<key>.<baseline>.{acc,fit_seconds,predict_seconds}`` for every split set
    ``{key: {"x_train", "mask_train", "y_train", "x_test", "mask_test", "y_test"}}`` (tensors
    or arrays; masks optional) and ``<prefix>.baselines.warmup_seconds`` (numba compiling)."""
    metrics = {f"{prefix}.baselines.warmup_seconds": warm_up(config.names, n_jobs=config.n_jobs)}
    for key, data in splits.items():
        arrays = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in data.items()}
        for name in config.names:
            score = score_baseline(
                name, arrays["x_train"], arrays.get("mask_train"), arrays["y_train"],
                arrays["x_test"], arrays.get("mask_test"), arrays["y_test"],
                seed=config.seed, n_jobs=config.n_jobs)
            logger.info("%s.%s.%s: accuracy %.4f, fit %.2f s", prefix, key, name,
                        score.accuracy, score.fit_seconds)
            metrics.update({f"{prefix}.{key}.{name}.acc": score.accuracy,
                            f"{prefix}.{key}.{name}.fit_seconds": score.fit_seconds,
                            f"{prefix}.{key}.{name}.predict_seconds": score.predict_seconds})
    return metrics


def evaluate_ts_baselines(ucr_data: dict[str, dict[str, Any]], params: dict[str, Any]
                          ) -> dict[str, float]:
    """aeon's MiniRocket, MultiRocket and 1-NN DTW on every UCR/UEA set, from the raw series:
    ``ts.<Dataset>.<baseline>.{acc,fit_seconds,predict_seconds}``."""
    return _baseline_metrics(ucr_data, ucr_params(params)[0].baselines, prefix="ts")


def evaluate_mnist1d_baselines(data: dict[str, torch.Tensor], params: dict[str, Any]
                               ) -> dict[str, float]:
    """The same baselines on MNIST-1D: ``mnist1d.<baseline>.{acc,fit_seconds,...}``."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    metrics = _baseline_metrics({"set": data}, config.baselines, prefix="mnist1d")
    return {key.replace("mnist1d.set.", "mnist1d."): value for key, value in metrics.items()}


def plot_ts_embeddings(embeddings: dict[str, dict[str, np.ndarray]],
                       params: dict[str, Any]) -> Figure:
    """One t-SNE panel per dataset of the default method's test embeddings."""
    config = ucr_params(params)[0]
    panels = {name: (e["embeddings"], e["labels"]) for name, e in embeddings.items()}
    return tsne_panels_figure(panels, seed=config.evaluation.seed,
                              perplexity=config.evaluation.tsne_perplexity,
                              max_iter=config.evaluation.tsne_iterations,
                              title=f"t-SNE of {config.default_method} test embeddings")


def ts_results_table(metrics: dict[str, float], baseline_metrics: dict[str, float],
                     seconds: dict[str, float], params: dict[str, Any]) -> str:
    """Markdown: accuracies beside targets, published figures and time ratios; then the
    practical baselines (aeon) beside each method's SVM-protocol accuracy."""
    config, methods = ucr_params(params)
    ours = reference_table(metrics, seconds, prefix="ts", datasets=config.datasets,
                           methods=list(methods), targets=config.targets,
                           published=config.published,
                           reference_seconds=config.reference_seconds)
    baselines = baseline_table({**metrics, **baseline_metrics}, prefix="ts",
                               datasets=config.datasets, baselines=config.baselines.names,
                               methods=list(methods))
    return (f"{ours}\n## Practical baselines (aeon, fitted on the raw series; fit seconds "
            f"after numba's compilation)\n\n{baselines}")


def generate_mnist1d_data(params: dict[str, Any]) -> dict[str, torch.Tensor]:
    """MNIST-1D from the package's generator: ``x_*`` ``[N, 40, 1]``, ``y_*`` ``[N]``."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    data = generate_mnist1d(seed=config.seed, num_samples=config.num_samples)
    return {key: torch.from_numpy(value[..., None] if key.startswith("x") else value)
            for key, value in data.items()}


def pretrain_mnist1d_simclr(data: dict[str, torch.Tensor], params: dict[str, Any]
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``simclr`` block's method on the MNIST-1D training signals: bundle and history."""
    config, x = from_params(Mnist1dParams, params, path="timeseries.mnist1d"), data["x_train"]
    with torch_threads(config.num_threads):
        return _pretrain(x, None, data["y_train"], config.simclr, name="mnist1d.simclr")[:2]


def evaluate_mnist1d_simclr(data: dict[str, torch.Tensor], bundle: dict[str, Any],
                            params: dict[str, Any]) -> dict[str, float]:
    """``mnist1d.simclr.linear.acc``: linear probe on the frozen, max-pooled embeddings."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    with torch_threads(config.num_threads):
        train, test = (z.numpy() for z in encode_splits(from_bundle(bundle, modality="series"),
                                                        data))
    predicted = linear_probe_predict(train, data["y_train"].numpy(), test, c=config.probe_c)
    return {"mnist1d.simclr.linear.acc": accuracy(data["y_test"].numpy(), predicted)}


def evaluate_mnist1d_svm_methods(data: dict[str, torch.Tensor], params: dict[str, Any],
                                 ucr: dict[str, Any]) -> dict[str, float]:
    """Each ``svm_methods`` entry of ``timeseries.ucr.methods`` (the same parameters as on the
    UCR/UEA sets) pretrained on the MNIST-1D training signals and scored by TS2Vec's SVM
    protocol: ``mnist1d.<name>.{svm.acc,pretrain_seconds}``."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    _, methods = ucr_params(ucr)
    unknown = [name for name in config.svm_methods if name not in methods]
    if unknown:
        raise ValueError(f"timeseries.mnist1d.svm_methods {unknown} are not entries of "
                         f"timeseries.ucr.methods {sorted(methods)}")
    metrics = {}
    with torch_threads(config.num_threads):
        for name in config.svm_methods:
            bundle, _, seconds = _pretrain(data["x_train"], None, data["y_train"], methods[name],
                                           name=f"mnist1d.{name}")
            train, test = (z.numpy() for z in encode_splits(
                from_bundle(bundle, modality="series"), data, pooling="padded_window"))
            predicted, _ = svm_protocol_predict(train, data["y_train"].numpy(), test,
                                                n_jobs=available_cores())
            metrics[f"mnist1d.{name}.svm.acc"] = accuracy(data["y_test"].numpy(), predicted)
            metrics[f"mnist1d.{name}.pretrain_seconds"] = seconds
    return metrics


def train_mnist1d_supervised(data: dict[str, torch.Tensor], params: dict[str, Any]
                             ) -> dict[str, float]:
    """``mnist1d.supervised.acc``: the same kind of encoder trained end to end with labels."""
    config = from_params(Mnist1dParams, params, path="timeseries.mnist1d")
    with torch_threads(config.num_threads):
        model = train_series_classifier(data["x_train"], None, data["y_train"], config.supervised,
                                        name="mnist1d.supervised")
        with torch.no_grad():
            predicted = model(data["x_test"]).argmax(1).numpy()
    return {"mnist1d.supervised.acc": accuracy(data["y_test"].numpy(), predicted)}
