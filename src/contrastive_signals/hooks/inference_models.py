"""Every training run logs its task's inference model as an MLflow model (``io/mlflow_models``)
with the task's metrics linked to it.

The hook collects what a task's inference bundle needs from the nodes as they run (their
inputs and outputs, so nothing is read twice), and logs the model once the task's metrics
exist:

- sleep: channels and stager from ``sleep.predict_test_nights``' inputs, parameters from the
  catalog, logged after ``sleep.evaluate`` with ``sleep.*`` metrics;
- digits: the encoder ``inference.digits.encoder`` (default ``triplet_pretrained``) with its
  training embeddings from ``evaluation.<encoder>.embed``, logged after
  ``evaluation.<encoder>.evaluate`` with ``<encoder>.*`` metrics.

``inference.log_models: false`` switches it off. A logging failure is reported (ERROR) and
does not stop the run: the trained files are saved, and ``ModelArtifactsHook`` stops the run
when MLflow's artifact store fails. The seconds it takes are logged (INFO) and
kept as the run's tag ``inference_model_log_s``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from contrastive_signals.inference.digits import digits_bundle
from contrastive_signals.inference.sleep import sleep_bundle

logger = logging.getLogger(__name__)


def _param(catalog, name: str, default: Any = None) -> Any:
    try:
        return catalog.load(f"params:{name}")
    except Exception:  # the parameter is not defined in this environment
        return default


class InferenceModelHook:
    """Logs the digits and sleep inference models of a training run to MLflow."""

    def __init__(self) -> None:
        self._catalog = None
        self._parts: dict[str, Any] = {}

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog, self._parts = catalog, {}

    def _settings(self) -> dict[str, Any]:
        return _param(self._catalog, "inference", None) or {}

    @hook_impl
    def after_node_run(self, node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        if mlflow.active_run() is None or not self._settings().get("log_models", True):
            return
        encoder = (self._settings().get("digits") or {}).get("encoder", "triplet_pretrained")
        if node.name == "sleep.predict_test_nights":
            self._parts["sleep"] = (inputs["sleep.epochs"]["channels"], inputs["sleep.model"])
        elif node.name == "sleep.evaluate" and "sleep" in self._parts:
            channels, stager = self._parts.pop("sleep")
            bundle = sleep_bundle(stager, channels=channels,
                                  ingestion=_param(self._catalog, "sleep.ingestion"),
                                  evaluation=_param(self._catalog, "sleep.evaluation"))
            self._log(bundle, outputs["sleep_metrics"])
        elif node.name == f"evaluation.{encoder}.embed":
            self._parts["digits"] = (inputs["digit_features"], inputs[f"{encoder}.encoder"],
                                     outputs[f"evaluation.{encoder}.embeddings"])
        elif node.name == f"evaluation.{encoder}.evaluate" and "digits" in self._parts:
            features, model, embeddings = self._parts.pop("digits")
            bundle = digits_bundle(encoder, model, _param(self._catalog, "features", {}),
                                   features["train"]["images"], embeddings["train_x"],
                                   embeddings["train_y"],
                                   k=int(_param(self._catalog, "evaluation", {}).get("knn_k", 5)))
            metrics = outputs[f"evaluation.{encoder}.probe_scores"]["metrics"]
            self._log(bundle, {f"{encoder}.{k}": v for k, v in metrics.items()})

    @staticmethod
    def _log(bundle: dict[str, Any], metrics: dict[str, float]) -> None:
        from contrastive_signals.io.mlflow_models import log_task_model

        start = time.perf_counter()
        try:
            info = log_task_model(bundle, metrics={k: v for k, v in metrics.items()
                                                   if isinstance(v, (int, float))})
        except Exception as error:  # the trained files are saved; MLflow's failure is reported
            logger.error("MLflow could not log the %s inference model (%s: %s); the trained "
                         "model files are saved", bundle["task"], type(error).__name__, error)
            return
        seconds = time.perf_counter() - start
        mlflow.set_tag(f"inference_model_log_s.{bundle['task']}", f"{seconds:.2f}")
        logger.info("Logged the %s inference model %s (%.2f s)", bundle["task"],
                    info.model_uri, seconds)
