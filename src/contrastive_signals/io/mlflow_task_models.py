"""The time-series and denoising inference models as MLflow pyfunc models (the pattern of
``io/mlflow_models.TaskModel``: one artifact, the task's inference bundle read back with
``weights_only=True``; ``predict`` calls the same pure function as the Kedro pipeline; no
Kedro imported, so ``mlflow.pyfunc.load_model`` works in a plain Python process and
``mlflow models serve --env-manager local`` serves it).

- ``timeseries`` (:class:`TimeseriesModel`, every UCR/UEA set of the training run): input
  ``[N, L, C]`` float32 (``L`` up to the set's length, the steps after a shorter series' end
  NaN), parameter ``dataset`` (default: the first set by name) -> ``{"embedding",
  "predicted_label", "predicted_class", "probe_label", "probabilities"}``.
- ``denoising`` (:class:`DenoisingModel`): input ``[M, N, N]`` sparse-view images, or
  ``[M, V, N]`` sinograms with the parameter ``input_kind="sinogram"``; parameter
  ``donor_seed`` -> ``{"sparse_view", "unet", "hvae", "donor_index"}``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

from contrastive_signals.inference import InputError
from contrastive_signals.inference.denoising import (
    Denoisers,
    denoise,
    example_images,
    sparse_view_images,
)
from contrastive_signals.inference.timeseries import (
    SeriesClassifiers,
    bundle_part,
    classify_series,
    default_dataset,
    example_series,
    series_from_array,
)
from contrastive_signals.io.mlflow_models import BUNDLE_ARTIFACT, _bad_request, log_task_model


class _BundleModel(mlflow.pyfunc.PythonModel):
    """Loads the bundle artifact; subclasses build their networks in :meth:`load_bundle`."""

    def load_context(self, context) -> None:
        self.load_bundle(torch.load(context.artifacts[BUNDLE_ARTIFACT], weights_only=True))

    def load_bundle(self, bundle: dict[str, Any]) -> None:
        raise NotImplementedError

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        try:
            return self.run(model_input, params or {})
        except InputError as error:
            raise _bad_request(str(error)) from None

    def run(self, model_input, params: dict[str, Any]) -> dict[str, np.ndarray]:
        raise NotImplementedError


class TimeseriesModel(_BundleModel):
    """The encoders and read-outs of a run's UCR/UEA sets
    (:mod:`contrastive_signals.inference.timeseries`), each built at its first request."""

    def load_bundle(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self._built: dict[str, SeriesClassifiers] = {}

    def classifiers(self, dataset: str, *, source: str = "request") -> SeriesClassifiers:
        """The built encoder and read-outs of ``dataset`` (InputError for another set)."""
        if dataset not in self._built:
            self._built[dataset] = SeriesClassifiers(bundle_part(self.bundle, dataset,
                                                                 source=source))
        return self._built[dataset]

    def run(self, model_input, params: dict[str, Any]) -> dict[str, np.ndarray]:
        dataset = str(params.get("dataset") or default_dataset(self.bundle))
        return classify_series(self.classifiers(dataset), series_from_array(model_input))


class DenoisingModel(_BundleModel):
    """The HVAE and the U-Net of a denoising run (:mod:`contrastive_signals.inference.denoising`)."""

    def load_bundle(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.denoisers = Denoisers(bundle)

    def run(self, model_input, params: dict[str, Any]) -> dict[str, np.ndarray]:
        images = sparse_view_images(self.bundle, model_input,
                                    kind=str(params.get("input_kind", "image")))
        return denoise(self.denoisers, images, donor_seed=params.get("donor_seed"))


def timeseries_signature(bundle: dict[str, Any]) -> ModelSignature:
    """Float32 ``[-1, -1, -1]`` (count, length, channels: the sets differ; each set's are
    checked in ``predict``) and the parameter ``dataset``."""
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1))]),
                          params=ParamSchema([ParamSpec("dataset", "string",
                                                        default_dataset(bundle))]))


def denoising_signature(bundle: dict[str, Any]) -> ModelSignature:
    """Float32 ``[-1, -1, N]`` (images ``[M, N, N]`` or sinograms ``[M, V, N]``) and the
    parameters ``input_kind`` (``image``) and ``donor_seed`` (the evaluation's)."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, bundle["image_size"]))]),
        params=ParamSchema([ParamSpec("input_kind", "string", "image"),
                            ParamSpec("donor_seed", "long", int(bundle["donor_seed"]))]))


def log_timeseries_model(bundle: dict[str, Any], *, metrics: dict[str, float] | None = None
                         ) -> Any:
    """Log a time-series bundle as the model ``timeseries_inference``; MLflow's
    ``ModelInfo``."""
    return log_task_model(bundle, metrics=metrics, python_model=TimeseriesModel(), signature=timeseries_signature(bundle),
                          input_example=example_series(bundle))


def log_denoising_model(bundle: dict[str, Any], *, metrics: dict[str, float] | None = None
                        ) -> Any:
    """Log a denoising bundle as the model ``denoising_inference``; MLflow's ``ModelInfo``."""
    return log_task_model(bundle, metrics=metrics, python_model=DenoisingModel(),
                          signature=denoising_signature(bundle),
                          input_example=example_images(bundle))
