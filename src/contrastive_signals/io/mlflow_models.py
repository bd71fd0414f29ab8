"""Each task's inference as an MLflow pyfunc model, and the choice of a model by parameter.

``TaskModel`` is a plain ``mlflow.pyfunc.PythonModel`` whose one artifact is the task's
inference bundle (``inference/<task>.py``, a ``torch.save`` file read back with
``weights_only=True``); ``predict`` calls the same pure function as the Kedro inference
pipeline. It imports no Kedro: ``mlflow.pyfunc.load_model("models:/<task>@champion")`` works
in a plain Python process, and ``mlflow models serve --env-manager local`` serves it from the
project's environment. Why not kedro-mlflow's ``KedroPipelineModel``: docs/inference.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

from contrastive_signals.inference import InputError
from contrastive_signals.inference.digits import image_shape, predict_digits
from contrastive_signals.inference.sleep import stage_night
from contrastive_signals.models.registry import from_bundle

TASKS = ("digits", "sleep")
BUNDLE_ARTIFACT = "bundle"
#: Tag on every logged model: which task it serves (``latest`` searches it).
TASK_TAG = "contrastive_signals.task"


def _bad_request(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)  # HTTP 400


class TaskModel(mlflow.pyfunc.PythonModel):
    """One task's inference bundle behind MLflow's pyfunc interface.

    digits: input ``[N, H, W]`` float32 in [0, 1] -> ``{"embedding", "neighbour_index",
    "neighbour_label", "neighbour_distance", "predicted_label"}``.
    sleep: input ``[1, C, L]`` float32 (one night, channels of the bundle), parameter
    ``sampling_rate`` (Hz) -> ``{"onset", "stage", "probabilities"}``.
    """

    def load_context(self, context) -> None:
        self.load_bundle(torch.load(context.artifacts[BUNDLE_ARTIFACT], weights_only=True))

    def load_bundle(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.task = bundle["task"]
        self.model = from_bundle(bundle["encoder" if self.task == "digits" else "stager"]).eval()

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        try:
            if self.task == "digits":
                return predict_digits(self.bundle, model_input, model=self.model)
            return self._stage(model_input, params or {})
        except InputError as error:
            raise _bad_request(str(error)) from None

    def _stage(self, model_input, params: dict[str, Any]) -> dict[str, np.ndarray]:
        nights = np.asarray(model_input)
        if nights.ndim != 3 or len(nights) != 1:
            raise InputError(f"request: expected one night of shape [1, "
                             f"{len(self.bundle['channels'])}, L], got {list(nights.shape)}")
        rate = float(params.get("sampling_rate", 100.0))
        out = stage_night(self.bundle, nights[0], rate, model=self.model)
        return {"onset": out["onset"], "stage": out["stage"],
                "probabilities": out["probabilities"]}


def signature_of(bundle: dict[str, Any]) -> ModelSignature:
    """The input schema (a float32 tensor, free batch and length) and, for sleep, the
    ``sampling_rate`` parameter."""
    if bundle["task"] == "digits":
        height, width = image_shape(bundle)
        return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32),
                                                        (-1, height, width))]))
    channels = len(bundle["channels"])
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1))]),
                          params=ParamSchema([ParamSpec("sampling_rate", "double", 100.0)]))


def input_example_of(bundle: dict[str, Any]) -> np.ndarray:
    """A small valid request: two training digits, or one 30-s epoch at 100 Hz (zeros)."""
    if bundle["task"] == "digits":
        return bundle["train_images"][:2].numpy().astype(np.float32)
    return np.zeros((1, len(bundle["channels"]), 3000), dtype=np.float32)


def log_task_model(bundle: dict[str, Any], *, metrics: dict[str, float] | None = None,
                   name: str | None = None,
                   python_model: mlflow.pyfunc.PythonModel | None = None,
                   signature: ModelSignature | None = None,
                   input_example: Any = None) -> Any:
    """Log ``bundle`` as an MLflow model of the active run (signature, input example, task
    tag), link ``metrics`` to it, and return MLflow's ``ModelInfo``.

    ``python_model``, ``signature`` and ``input_example`` default to :class:`TaskModel`'s
    (the time-series and denoising classes pass theirs: ``io/mlflow_task_models.py``).
    Requirements are given (the project's environment
    serves it), so MLflow does not start a subprocess to infer them.
    """
    task = bundle["task"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{task}_inference.pt"
        torch.save(bundle, path)
        info = mlflow.pyfunc.log_model(
            name=name or f"{task}_inference", python_model=python_model or TaskModel(),
            artifacts={BUNDLE_ARTIFACT: str(path)},
            signature=signature or signature_of(bundle),
            input_example=input_example_of(bundle) if input_example is None else input_example,
            pip_requirements=[f"mlflow=={mlflow.__version__}",
                              f"torch=={torch.__version__.split('+')[0]}", "contrastive_signals"],
            tags={TASK_TAG: task})
    if metrics:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, model_id=info.model_id)
    return info


#: The pipeline whose run logs a task's model (default ``__default__``).
TRAINING = {"sleep": "sleep", "timeseries": "timeseries_ucr", "denoising": "denoising"}


def model_uri(task: str, choice: str | int | None) -> str:
    """The MLflow model URI that the parameter ``choice`` names.

    ``latest`` (or None): the newest model of ``task`` logged in this tracking store; an
    integer (or digits): that version of the registered model ``<task>``; anything with
    ``:/`` (``models:/digits@champion``, ``runs:/<id>/digits_inference``): used as given.
    """
    text = "latest" if choice is None else str(choice).strip()
    if "://" in text or ":/" in text:
        return text
    if text.isdigit():
        return f"models:/{task}/{text}"
    if text != "latest":
        raise ValueError(f"model choice for {task}: 'latest', a registered version number or "
                         f"an MLflow model URI, got {choice!r}")
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    found = mlflow.search_logged_models(
        experiment_ids=experiments, filter_string=f"tags.`{TASK_TAG}` = '{task}'",
        order_by=[{"field_name": "creation_time", "ascending": False}], max_results=1,
        output_format="list")
    if not found:
        raise ValueError(f"no {task} model logged in the MLflow store "
                         f"{mlflow.get_tracking_uri()}: run `kedro run --pipeline="
                         f"{TRAINING.get(task, '__default__')}` first, or give "
                         f"an MLflow model URI")
    return f"models:/{found[0].model_id}"


def load_task_model(uri: str) -> TaskModel:
    """The ``TaskModel`` behind ``uri`` (its bundle and built network)."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()


#: The figure that picks a task's best model (higher is better), per task; ``*`` matches any
#: text and several matching figures of one model are averaged (timeseries: the SVM accuracy
#: over the run's sets; denoising: the swap PSNR over view counts).
BEST_METRIC = {"digits": "knn.acc", "sleep": "sleep.kappa", "timeseries": "svm.acc",
               "denoising": "denoise.hvae_swap.v*.psnr"}


def _metric_score(metrics: list[Any] | None, wanted: str) -> float | None:
    """The mean of a model's figures named ``wanted``, ending in ``.<wanted>``, or matching it
    as a pattern; None when it has none."""
    from fnmatch import fnmatchcase

    values = [m.value for m in metrics or ()
              if m.key == wanted or m.key.endswith(f".{wanted}") or fnmatchcase(m.key, wanted)]
    return float(np.mean(values)) if values else None


def register_best(task: str, *, metric: str | None = None, model_id: str | None = None,
                  alias: str = "champion") -> tuple[str, int]:
    """Register the best logged model of ``task`` (highest ``metric``, default
    :data:`BEST_METRIC`; a key ending in it counts, so ``knn.acc`` finds
    ``triplet_pretrained.knn.acc``; see :func:`_metric_score`) or the model ``model_id``, as
    a new version of the registered model ``<task>`` with ``alias``.

    Returns:
        ``(model id, registered version)``.
    """
    if task not in BEST_METRIC:
        raise ValueError(f"task must be one of {tuple(BEST_METRIC)}, got {task!r}")
    if model_id is None:
        wanted = metric or BEST_METRIC[task]
        experiments = [e.experiment_id for e in mlflow.search_experiments()]
        models = mlflow.search_logged_models(experiment_ids=experiments,
                                             filter_string=f"tags.`{TASK_TAG}` = '{task}'",
                                             output_format="list")
        scored = [(_metric_score(m.metrics, wanted), m.model_id) for m in models]
        scored = [(value, mid) for value, mid in scored if value is not None]
        if not scored:
            raise ValueError(f"no {task} model with the metric {wanted!r} in the MLflow store "
                             f"{mlflow.get_tracking_uri()}")
        model_id = max(scored)[1]
    version = mlflow.register_model(f"models:/{model_id}", task)
    mlflow.MlflowClient().set_registered_model_alias(task, alias, version.version)
    return model_id, int(version.version)
