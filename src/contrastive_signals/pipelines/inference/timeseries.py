"""``timeseries_inference``: new ``.ts`` files of a UCR/UEA set -> embeddings and classes from
that set's trained encoder and read-outs (``inference/timeseries.py``, the function the
MLflow model ``timeseries`` calls). Parameters ``inference.timeseries``
(parameters_inference.yml); files and columns in docs/inference.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.pipeline import Pipeline, node

from contrastive_signals.config import from_params
from contrastive_signals.data.ucr import UcrFormatError, read_ucr_file
from contrastive_signals.inference import InputError
from contrastive_signals.inference.timeseries import classify_series
from contrastive_signals.pipelines.inference.nodes import _input_files, _load, _raise_problems

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimeseriesInferenceParams:
    """``inference.timeseries``: which set's part of the model, which model (latest, a
    registered version, an MLflow URI), the folder of ``.ts`` files, and the method whose
    encoder training runs log (null: ``timeseries.ucr.default_method``)."""

    dataset: str
    input_folder: str
    model: str | int = "latest"
    method: str | None = None

    def __post_init__(self) -> None:
        for name in ("dataset", "input_folder"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"{name} must not be empty")


def read_series_file(path: Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The series ``[C, T_i]`` of a ``.ts`` file (aeon's reader after the strict header check
    of the UCR ingestion; ``@classLabel false`` files without labels too) and its labels
    (None without); errors name the file."""
    try:
        raw = read_ucr_file(path, require_labels=False)
    except UcrFormatError as error:
        raise InputError(f"{path.name}: {str(error).replace(str(path), '').lstrip(':, ')}"
                         ) from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path.name}: unreadable ({type(error).__name__}: {error})") from None
    return raw.series, raw.labels


def timeseries_inference(params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Classes and embeddings of every series of the ``.ts`` files in ``input_folder`` with
    the model of ``dataset`` (``model``: latest, a registered version, an MLflow URI).

    Returns:
        the predictions table (one row per series: file, item, length, the file's label if it
        has one, the SVM's class, the linear probe's class and probabilities ``p_<class>``)
        and ``{"model_uri", "dataset", "method", "classes", "files", "items", "embedding"}``.

    Raises:
        InputError: when the chosen model was not trained on ``dataset``.
        InferenceInputError: naming every unusable file and why.
    """
    config = from_params(TimeseriesInferenceParams, params, path="inference.timeseries")
    dataset = config.dataset
    model, uri = _load("timeseries", params)
    classifiers = model.classifiers(dataset, source=f"inference.timeseries.dataset ({uri})")
    bundle = classifiers.bundle
    files = _input_files(config.input_folder, (".ts",), "UCR/UEA .ts files")
    results, problems = [], []
    for path in files:
        try:
            series, labels = read_series_file(path)
            results.append((path.name, series, labels,
                            classify_series(classifiers, series, source=path.name)))
        except InputError as error:
            problems.append(str(error))
    _raise_problems(problems, config.input_folder)
    classes = bundle["classes"]
    tables = []
    for name, series, labels, out in results:
        table = pd.DataFrame({"file": name, "item": np.arange(len(series)),
                              "length": [s.shape[1] for s in series],
                              "label": labels if labels is not None else "",
                              "predicted_class": out["predicted_class"],
                              "probe_class": np.asarray(classes)[out["probe_label"]]})
        for j, label in enumerate(classes):
            table[f"p_{label}"] = out["probabilities"][:, j]
        tables.append(table)
    predictions = pd.concat(tables, ignore_index=True)
    logger.info("timeseries inference (%s, %s): %d series in %d file(s)", dataset,
                bundle["method"], len(predictions), len(results))
    embeddings = {"model_uri": uri, "dataset": dataset, "method": bundle["method"],
                  "classes": classes, "files": predictions["file"].tolist(),
                  "items": predictions["item"].tolist(),
                  "embedding": np.concatenate([out["embedding"] for *_, out in results]).tolist()}
    return predictions, embeddings


def create_timeseries_pipeline(**kwargs) -> Pipeline:
    return Pipeline([node(timeseries_inference, "params:inference.timeseries",
                          ["timeseries_inference_predictions", "timeseries_inference_embeddings"],
                          name="timeseries_inference")], tags="inference")
