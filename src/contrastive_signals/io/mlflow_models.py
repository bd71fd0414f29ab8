"""Each task's inference as an MLflow pyfunc model, and the choice of a model by parameter.

``TaskModel`` is a plain ``mlflow.pyfunc.PythonModel`` whose one artifact is the task's
inference bundle (``inference/<task>.py``, a ``torch.save`` file read back with
``weights_only=True``); ``predict`` calls the same pure function as the Kedro inference
pipeline. It imports no Kedro: ``mlflow.pyfunc.load_model("models:/<task>@champion")`` works
in a plain Python process, and ``mlflow models serve --env-manager local`` serves it from the
project's environment. Why not kedro-mlflow's ``KedroPipelineModel``: docs/inference.md.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

from contrastive_signals.data.sleep_edf import psg_edf_bytes
from contrastive_signals.inference import InputError
from contrastive_signals.inference.afm import classify_curves
from contrastive_signals.inference.bundles import model_choice
from contrastive_signals.inference.digits import image_shape, predict_digits
from contrastive_signals.inference.sleep import (
    decode_edf_base64,
    stage_edf_bytes,
    stage_night,
    stages_table,
)
from contrastive_signals.models.registry import from_bundle

BUNDLE_ARTIFACT = "bundle"
#: The network inside each task's bundle.
NETWORK_KEY = {"digits": "encoder", "sleep": "stager", "afm": "classifier"}
#: The string column of the ``sleep_edf`` model: one EDF/EDF+ file per row, base64.
EDF_COLUMN = "edf_base64"
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
    afm: input ``[N, L]`` float32 retract forces (N) at equal distance steps from the
    contact point -> ``{"predicted", "class_name", "probability", "probabilities"}``.
    """

    def load_context(self, context) -> None:
        self.load_bundle(torch.load(context.artifacts[BUNDLE_ARTIFACT], weights_only=True))

    def load_bundle(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.task = bundle["task"]
        self.model = from_bundle(bundle[NETWORK_KEY[self.task]]).eval()

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        try:
            return self._predict(model_input, params or {})
        except InputError as error:
            raise _bad_request(str(error)) from None

    def _predict(self, model_input, params: dict[str, Any]):
        if self.task == "digits":
            return predict_digits(self.bundle, model_input, model=self.model)
        if self.task == "afm":
            return classify_curves(self.bundle, model_input, model=self.model)
        return self._stage(model_input, params)

    def _stage(self, model_input, params: dict[str, Any]) -> dict[str, np.ndarray]:
        nights = np.asarray(model_input)
        if nights.ndim != 3 or len(nights) != 1:
            raise InputError(f"request: expected one night of shape [1, "
                             f"{len(self.bundle['channels'])}, L], got {list(nights.shape)}")
        rate = float(params.get("sampling_rate", 100.0))
        out = stage_night(self.bundle, nights[0], rate, model=self.model)
        return {"onset": out["onset"], "stage": out["stage"],
                "probabilities": out["probabilities"]}


class SleepEdfModel(TaskModel):
    """The sleep stager fed with EDF/EDF+ files: a table with the string column
    ``edf_base64`` (one night per row: the file's bytes, base64) -> one row per 30-s epoch:
    ``night`` (the input row), ``onset`` (s), ``stage`` (name), ``p_<stage>``, the
    ``sleep_inference`` pipeline's CSV columns. The file is read by the pipeline's reader
    (``read_psg``); the sampling rate is the file's."""

    def _predict(self, model_input, params: dict[str, Any]) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if EDF_COLUMN not in frame.columns:
            raise InputError(f"request: expected the column '{EDF_COLUMN}' (the EDF file's "
                             f"bytes, base64), got columns {list(frame.columns)}")
        if len(frame) == 0:
            raise InputError(f"request: no rows (one EDF night per row of '{EDF_COLUMN}')")
        tables = []
        for row, text in enumerate(frame[EDF_COLUMN]):
            source = f"request row {row} ({EDF_COLUMN})"
            out = stage_edf_bytes(self.bundle, decode_edf_base64(text, source=source),
                                  model=self.model, source=source)
            tables.append(stages_table(out).assign(night=row))
        table = pd.concat(tables, ignore_index=True)
        return table[["night", *table.columns[:-1]]]


def _digits_signature(bundle: dict[str, Any]) -> ModelSignature:
    height, width = image_shape(bundle)
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, height, width))]))


def _sleep_signature(bundle: dict[str, Any]) -> ModelSignature:
    channels = len(bundle["channels"])
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1))]),
                          params=ParamSchema([ParamSpec("sampling_rate", "double", 100.0)]))


def _edf_signature(bundle: dict[str, Any]) -> ModelSignature:
    return ModelSignature(inputs=Schema([ColSpec("string", EDF_COLUMN)]))


def _afm_signature(bundle: dict[str, Any]) -> ModelSignature:
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1))]))


def _example_night(bundle: dict[str, Any]) -> np.ndarray:
    """One 30-s epoch at 100 Hz ``[C, 3000]`` of small noise (volts)."""
    rng = np.random.default_rng(0)
    return rng.normal(0.0, 2e-5, (len(bundle["channels"]), 3000)).astype(np.float32)


def _edf_example(bundle: dict[str, Any]) -> pd.DataFrame:
    data = psg_edf_bytes(_example_night(bundle), 100.0, bundle["channels"])
    return pd.DataFrame({EDF_COLUMN: [base64.b64encode(data).decode("ascii")]})


def _afm_example(bundle: dict[str, Any]) -> np.ndarray:
    """Two flat curves with a small adhesion dip near the contact (N)."""
    rows = np.zeros((2, bundle["grid_points"]), dtype=np.float32)
    rows[:, : bundle["grid_points"] // 20] = -1e-10
    return rows


@dataclass(frozen=True)
class ModelForm:
    """One kind of logged model built from a task's bundle: the bundle's task, the pyfunc
    class, its signature and input example, the figure that picks the best one (higher is
    better) and the training pipeline that logs it."""

    bundle_task: str
    python_model: type[TaskModel]
    signature: Callable[[dict[str, Any]], ModelSignature]
    input_example: Callable[[dict[str, Any]], Any]
    best_metric: str
    training: str


#: Every kind of logged model by its name, which is also its registered model's name and
#: its ``contrastive_signals.task`` tag. ``sleep`` and ``sleep_edf`` share the stager's bundle.
FORMS: dict[str, ModelForm] = {
    "digits": ModelForm("digits", TaskModel, _digits_signature,
                        lambda b: b["train_images"][:2].numpy().astype(np.float32),
                        "knn.acc", "__default__"),
    "sleep": ModelForm("sleep", TaskModel, _sleep_signature, lambda b: _example_night(b)[None],
                       "sleep.kappa", "sleep"),
    "sleep_edf": ModelForm("sleep", SleepEdfModel, _edf_signature, _edf_example,
                           "sleep.kappa", "sleep"),
    "afm": ModelForm("afm", TaskModel, _afm_signature, _afm_example, "macro_f1", "afm"),
}
#: Kinds whose pyfunc class, signature and example live in ``io/mlflow_task_models.py`` (they
#: pass them to :func:`log_task_model`): their training pipeline and best-model figure (``*``
#: matches any text; several matching figures are averaged: the SVM accuracy over the run's
#: sets, the swap PSNR over view counts).
EXTERNAL_FORMS = {"timeseries": ("timeseries_ucr", "svm.acc"),
                  "denoising": ("denoising", "denoise.hvae_swap.v*.psnr")}
TASKS = (*FORMS, *EXTERNAL_FORMS)
#: The figure that picks a task's best model (higher is better), per task.
BEST_METRIC = {**{name: form.best_metric for name, form in FORMS.items()},
               **{name: metric for name, (_, metric) in EXTERNAL_FORMS.items()}}


def forms_of(bundle: dict[str, Any]) -> list[str]:
    """The kinds of model a bundle is logged as (the sleep stager: ``sleep``, ``sleep_edf``)."""
    return [name for name, form in FORMS.items() if form.bundle_task == bundle["task"]]


def _form(name: str) -> ModelForm:
    if name not in FORMS:
        raise ValueError(f"the model kind must be one of {tuple(FORMS)}, got {name!r}")
    return FORMS[name]


def signature_of(bundle: dict[str, Any], form: str | None = None) -> ModelSignature:
    """The input schema of the model kind ``form`` (default: the bundle's task): a float32
    tensor (free batch and length; sleep: plus the ``sampling_rate`` parameter) or, for
    ``sleep_edf``, the string column ``edf_base64``."""
    return _form(form or bundle["task"]).signature(bundle)


def input_example_of(bundle: dict[str, Any], form: str | None = None) -> Any:
    """A small valid request: two training digits; one 30-s epoch at 100 Hz (an array, or
    an EDF file base64-encoded); two flat force curves."""
    return _form(form or bundle["task"]).input_example(bundle)


def log_task_model(bundle: dict[str, Any], *, metrics: dict[str, float] | None = None,
                   form: str | None = None, name: str | None = None,
                   python_model: mlflow.pyfunc.PythonModel | None = None,
                   signature: ModelSignature | None = None,
                   input_example: Any = None) -> Any:
    """Log ``bundle`` as an MLflow model of kind ``form`` (default: the bundle's task) in the
    active run (signature, input example, task tag), link ``metrics`` to it, and return
    MLflow's ``ModelInfo``.

    ``python_model``, ``signature`` and ``input_example`` default to :class:`TaskModel`'s
    (the time-series and denoising classes pass theirs: ``io/mlflow_task_models.py``).
    Requirements are given (the project's environment
    serves it), so MLflow does not start a subprocess to infer them.
    """
    form = form or bundle["task"]
    if python_model is None or form in FORMS:
        kind = _form(form)
        if kind.bundle_task != bundle["task"]:
            raise ValueError(f"a {form} model needs a {kind.bundle_task} bundle, "
                             f"got {bundle['task']}")
        python_model = python_model or kind.python_model()
        signature = signature or kind.signature(bundle)
        input_example = kind.input_example(bundle) if input_example is None else input_example
    elif signature is None or input_example is None:
        raise ValueError(f"a {form} model needs its signature and input example")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{bundle['task']}_inference.pt"
        torch.save(bundle, path)
        info = mlflow.pyfunc.log_model(
            name=name or f"{form}_inference",
            python_model=python_model, artifacts={BUNDLE_ARTIFACT: str(path)},
            signature=signature, input_example=input_example,
            pip_requirements=[f"mlflow=={mlflow.__version__}",
                              f"torch=={torch.__version__.split('+')[0]}", "contrastive_signals"],
            tags={TASK_TAG: form})
    if metrics:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, model_id=info.model_id)
    return info


def _training_pipeline(task: str) -> str:
    """The pipeline whose run logs ``task``'s model."""
    if task in FORMS:
        return FORMS[task].training
    return EXTERNAL_FORMS.get(task, ("__default__",))[0]


def model_uri(task: str, choice: str | int | None) -> str:
    """The MLflow model URI that the parameter ``choice`` names (``inference.bundles.
    model_choice``): ``latest``: the newest model of ``task`` logged in this tracking store;
    a version number: that version of the registered model ``<task>``; an MLflow model URI
    (``models:/digits@champion``, ``runs:/<id>/digits_inference``): used as given."""
    kind, value = model_choice(choice, what=f"the {task} model choice")
    if kind == "uri":
        return value
    if kind == "version":
        return f"models:/{task}/{value}"
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    found = mlflow.search_logged_models(
        experiment_ids=experiments, filter_string=f"tags.`{TASK_TAG}` = '{task}'",
        order_by=[{"field_name": "creation_time", "ascending": False}], max_results=1,
        output_format="list")
    if not found:
        raise ValueError(f"no {task} model logged in the MLflow store "
                         f"{mlflow.get_tracking_uri()}: run `kedro run --pipeline="
                         f"{_training_pipeline(task)}` first, or give an MLflow model URI")
    return f"models:/{found[0].model_id}"


def load_task_model(uri: str) -> TaskModel:
    """The ``TaskModel`` behind ``uri`` (its bundle and built network)."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()


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
