"""Every training run logs its task's inference model as an MLflow model (``io/mlflow_models``)
with the task's metrics linked to it.

The hook collects what a task's inference bundle needs from the nodes as they run (their
inputs and outputs, so nothing is read twice), and logs the model once the task's metrics
exist:

- sleep: channels and stager from ``sleep.predict_test_nights``' inputs, parameters from the
  catalog, logged after ``sleep.evaluate`` with ``sleep.*`` metrics, twice: ``sleep`` (a
  night as an array) and ``sleep_edf`` (a night as an EDF file, base64);
- digits: the encoder ``inference.digits.encoder`` (default ``triplet_pretrained``) with its
  training embeddings from ``evaluation.<encoder>.embed``, logged after
  ``evaluation.<encoder>.evaluate`` with ``<encoder>.*`` metrics;
- afm: the classifier ``inference.afm.variant`` (default ``deriv_pre_100pc``, the headline
  model) from ``afm_evaluate_<variant>``'s inputs with the run's ``afm.ingestion.grid_points``
  and ``afm.preprocessing`` steps (with the derivative channel when the classifier's
  features have it), logged after that node with ``afm.<variant>.macro_f1`` and
  ``afm.<variant>.single_rupture.f1``.

``inference.log_models: false`` switches it off. A logging failure is reported (ERROR) and
does not stop the run: the trained files are saved, and ``ModelArtifactsHook`` stops the run
when MLflow's artifact store fails. The seconds it takes are logged (INFO) and
kept as the run's tag ``inference_model_log_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from contrastive_signals.config import from_params
from contrastive_signals.inference.afm import afm_bundle
from contrastive_signals.inference.digits import digits_bundle
from contrastive_signals.inference.sleep import sleep_bundle

logger = logging.getLogger(__name__)


def _param(catalog, name: str, default: Any = None) -> Any:
    try:
        return catalog.load(f"params:{name}")
    except Exception:  # the parameter is not defined in this environment
        return default


class InferenceModelHook:
    """Logs the digits, sleep and AFM inference models of a training run to MLflow."""

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
        else:
            self._after_afm_node(node, inputs, outputs)

    def _after_afm_node(self, node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        if not node.name.startswith("afm_evaluate_"):
            return
        from contrastive_signals.pipelines.afm.nodes import MAIN_VARIANT
        from contrastive_signals.pipelines.afm.params import PreprocessingParams

        variant = (self._settings().get("afm") or {}).get("variant") or MAIN_VARIANT
        if node.name != f"afm_evaluate_{variant}":
            return

        steps = from_params(PreprocessingParams, _param(self._catalog, "afm.preprocessing"),
                            path="afm.preprocessing").chosen(
            derivative="afm.deriv.features" in inputs)
        grid = int(_param(self._catalog, "afm.ingestion", {}).get("grid_points", 1024))
        bundle = afm_bundle(inputs[f"afm.{variant}.encoder"], variant=variant, steps=steps,
                            grid_points=grid)
        scores = outputs[f"afm.{variant}.scores"]
        self._log(bundle, {f"afm.{variant}.{k}": scores[k]
                           for k in ("macro_f1", "single_rupture.f1") if k in scores})

    @staticmethod
    def _log(bundle: dict[str, Any], metrics: dict[str, float]) -> None:
        """Log every kind of model the bundle gives (``forms_of``), each with ``metrics``."""
        from contrastive_signals.io.mlflow_models import forms_of, log_task_model

        numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        for form in forms_of(bundle):
            log_reported(form, lambda form=form: log_task_model(bundle, metrics=numbers,
                                                                form=form))


def log_reported(kind: str, log: Callable[[], Any]) -> None:
    """Run ``log`` (it logs one ``kind`` of inference model and returns MLflow's
    ``ModelInfo``): its seconds go to the run's tag ``inference_model_log_s.<kind>``; a failure
    is reported, not raised (the trained files are saved already)."""
    start = time.perf_counter()
    try:
        info = log()
    except Exception as error:  # the trained files are saved; the failure is reported
        logger.error("MLflow could not log the %s inference model (%s: %s); the trained "
                     "model files are saved", kind, type(error).__name__, error)
        return
    seconds = time.perf_counter() - start
    mlflow.set_tag(f"inference_model_log_s.{kind}", f"{seconds:.2f}")
    logger.info("Logged the %s inference model %s (%.2f s)", kind, info.model_uri, seconds)
