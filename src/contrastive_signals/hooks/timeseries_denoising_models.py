"""Time-series and denoising training runs log their inference models to MLflow
(``io/mlflow_task_models.py``), as :class:`~contrastive_signals.hooks.inference_models.
InferenceModelHook` does for digits and sleep:

- after ``timeseries.gather_ucr_sets`` (which joins the sets' namespaces ``ucr_<Set>``): the model ``timeseries`` with every UCR/UEA set
  of the run: the encoder of ``inference.timeseries.method`` (default: ``timeseries.ucr.
  default_method``) with its training embeddings (``encode_splits`` as the evaluation) and
  the SVM's ``C`` (the evaluation's grid search, run once more on the same embeddings), the
  ``ts.<Dataset>.<method>.*`` metrics linked;
- after ``evaluate_denoising``: the model ``denoising`` (HVAE, U-Net, the evaluation's donor
  pool and seed), its ``denoise.{unet,hvae_swap,hvae_own}.*`` metrics linked.

``inference.log_models: false`` switches it off; a logging failure is reported (ERROR) and
the run goes on; the seconds are the run's tags ``inference_model_log_s.<key>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from contrastive_signals.hooks.inference_models import _param, log_reported
from contrastive_signals.inference.denoising import denoising_bundle
from contrastive_signals.inference.timeseries import dataset_part, timeseries_bundle
from contrastive_signals.training.device import torch_threads

logger = logging.getLogger(__name__)
DENOISERS = ("unet", "hvae_swap", "hvae_own")


class TimeseriesDenoisingModelHook:
    """Logs the time-series (per set) and denoising inference models of a training run."""

    def __init__(self) -> None:
        self._catalog = None

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog

    @hook_impl
    def after_node_run(self, node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        settings = _param(self._catalog, "inference", None) or {}
        if mlflow.active_run() is None or not settings.get("log_models", True):
            return
        if node.name == "timeseries.gather_ucr_sets":
            self._log_timeseries(outputs, (settings.get("timeseries") or {}).get("method"))
        elif node.name == "evaluate_denoising":
            self._log_denoising(inputs, outputs["denoising_scores"])

    def _log_timeseries(self, outputs: dict[str, Any], method: str | None) -> None:
        params = _param(self._catalog, "timeseries.ucr", None) or {}
        method = method or params.get("default_method", "ts2vec")
        evaluation = params.get("evaluation") or {}
        data, encoders = outputs["timeseries.ucr_data"], outputs["timeseries.ucr_encoders"]
        metrics = outputs["timeseries.ucr_metrics"]

        def build() -> dict[str, Any]:
            with torch_threads(params.get("num_threads")):
                return timeseries_bundle(method, {
                    name: dataset_part(name, method, encoders[name][method], data[name],
                                       pooling=evaluation.get("pooling", "padded_window"),
                                       probe_c=evaluation.get("probe_c", 1.0))
                    for name in data})

        _log("timeseries", build, {k: v for k, v in metrics.items()
                                   if any(k.startswith(f"ts.{name}.{method}.") for name in data)})

    def _log_denoising(self, inputs: dict[str, Any], scores: dict[str, float]) -> None:
        params, pairs = inputs["params:denoising"], inputs["denoising_pairs"]

        def build() -> dict[str, Any]:
            return denoising_bundle(inputs["denoising_hvae.encoder"],
                                    inputs["denoising_unet.encoder"], pairs["train"]["clean"],
                                    donor_pool=params["data"]["donor_pool"],
                                    donor_seed=params["evaluation"]["seed"],
                                    views=pairs["views"], train_views=pairs["train_views"])

        _log("denoising", build, {k: v for k, v in scores.items()
                                  if any(k.startswith(f"denoise.{d}.") for d in DENOISERS)})


def _log(key: str, build: Callable[[], dict[str, Any]], metrics: dict[str, float]) -> None:
    """Build the bundle and log it (``io/mlflow_task_models``); failures are reported."""
    from contrastive_signals.io.mlflow_task_models import log_denoising_model, log_timeseries_model

    def build_and_log():
        bundle = build()
        log = log_denoising_model if bundle["task"] == "denoising" else log_timeseries_model
        return log(bundle, metrics={k: v for k, v in metrics.items()
                                    if isinstance(v, (int, float))})

    log_reported(key, build_and_log)
