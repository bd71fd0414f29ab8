"""``afm_inference``: force-curve files (any format afmformats reads) -> class and
probability per curve, with the AFM classifier chosen by ``inference.afm.model``.

The files are read by the AFM ingestion's reader (``read_afm_file``), put on the ingestion's
distance grid and preprocessed with the training run's steps (``inference/afm.py``, the
function the MLflow model calls too).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.pipeline import Pipeline, node

from contrastive_signals.data.afm_curves import (
    AfmFileError,
    find_afm_files,
    read_afm_file,
    supported_suffixes,
)
from contrastive_signals.data.bad_files import problem_line
from contrastive_signals.inference.afm import classify_curves, grid_curves

from .nodes import InferenceInputError, _load, _raise_problems

logger = logging.getLogger(__name__)


def read_curve_files(folder: str) -> list[dict[str, Any]]:
    """Every curve of every afmformats file under ``folder`` (recursively).

    Raises:
        InferenceInputError: no such file, or one message naming every unusable file and why
            (unreadable, not a force-distance file, no retract segment or too few samples,
            non-finite values).
    """
    root = Path(folder)
    files = find_afm_files(root) if root.is_dir() else []
    if not files:
        raise InferenceInputError(f"no AFM force-curve files in {folder} (expected files "
                                  f"ending in {', '.join(sorted(supported_suffixes()))}); "
                                  "see docs/inference.md")
    curves, problems = [], []
    for path in files:
        try:
            curves.extend(read_afm_file(path, name=str(path.relative_to(root))))
        except AfmFileError as error:
            problems.extend(problem_line(file, problem) for file, problem in error.problems)
    _raise_problems(problems, folder)
    return curves


def afm_inference(params: dict[str, Any]) -> pd.DataFrame:
    """Class and probabilities of every curve in ``input_folder``.

    Returns:
        one row per curve: ``file``, ``curve`` (its index in the file), ``curve_id``,
        ``predicted_class``, ``probability`` (of that class) and ``p_<class>`` per class.
    """
    model, uri = _load("afm", params)
    bundle = model.bundle
    curves = read_curve_files(params["input_folder"])
    out = classify_curves(bundle, grid_curves(bundle, curves), model=model.model)
    table = pd.DataFrame({"file": [c["file"] for c in curves],
                          "curve": [c["enum"] for c in curves],
                          "curve_id": [c["curve_id"] for c in curves],
                          "predicted_class": out["class_name"],
                          "probability": out["probability"]})
    for j, name in enumerate(bundle["classes"]):
        table[f"p_{name}"] = out["probabilities"][:, j]
    logger.info("AFM inference with %s (%s): %d curves from %d files; %s", uri,
                bundle["variant"], len(table), table["file"].nunique(),
                table["predicted_class"].value_counts().to_dict())
    return table


def create_afm_pipeline(**kwargs) -> Pipeline:
    return Pipeline([node(afm_inference, "params:inference.afm", "afm_inference_predictions",
                          name="afm_inference")], tags="inference")
