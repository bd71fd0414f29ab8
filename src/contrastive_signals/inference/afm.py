"""AFM: class and class probabilities of new force curves.

A curve takes the training path: the retract segment read by afmformats
(``data.afm_curves.read_afm_file``) -> its uniform distance grid (``curves_to_grid``, the
ingestion's ``grid_points``) -> the training run's preprocessing steps
(``signal.steps.apply_feature_steps``, with the derivative channel when the classifier was
trained on it) -> the fine-tuned encoder's embedding -> its classifier head (the
evaluation's ``model.head(embed(model, x))``), softmax for the probabilities.

The *AFM inference bundle* is ``{"task": "afm", "variant": str (e.g. deriv_pre_100pc),
"classifier": model bundle (curve_cnn with its head), "steps": [step dicts], "grid_points":
int, "classes": [class names]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from contrastive_signals.data.afm_curves import MIN_RETRACT_POINTS, curves_to_grid
from contrastive_signals.data.afm_simulator import AFM_CLASSES
from contrastive_signals.inference.bundles import InputError, require_task
from contrastive_signals.models.registry import embed, from_bundle
from contrastive_signals.signal.steps import apply_feature_steps


def afm_bundle(classifier: dict[str, Any], *, variant: str, steps: Sequence[Mapping[str, Any]],
               grid_points: int) -> dict[str, Any]:
    """The bundle from a trained classifier and the run's ingestion grid and preprocessing
    steps (already chosen for the classifier's input: with or without the derivative)."""
    return {"task": "afm", "variant": str(variant), "classifier": classifier,
            "steps": [dict(step) for step in steps], "grid_points": int(grid_points),
            "classes": list(AFM_CLASSES)}


def grid_curves(bundle: dict[str, Any], curves: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Curves read by ``read_afm_file`` -> ``[N, 1, grid_points]`` float32 force (N) on their
    uniform distance grids, as the ingestion puts them."""
    return curves_to_grid(curves, points=bundle["grid_points"])[0]


def force_rows(force: Any, grid_points: int, *, source: str = "request") -> np.ndarray:
    """Retract forces sampled at equal distance steps from the contact point, ``[N, L]`` or
    ``[N, 1, L]`` (N; any ``L >= 16``), as ``[N, 1, grid_points]`` float32; rows of another
    length are linearly interpolated onto the grid (``L == grid_points`` passes unchanged).

    Raises:
        InputError: naming ``source`` for another shape, fewer than 16 samples, a
            non-numeric dtype or non-finite values.
    """
    array = np.asarray(force)
    if array.dtype.kind not in "fiu":
        raise InputError(f"{source}: forces must be numbers, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 2 or len(array) == 0 or array.shape[1] < MIN_RETRACT_POINTS:
        raise InputError(f"{source}: expected retract forces of shape [N, L] (N >= 1, L >= "
                         f"{MIN_RETRACT_POINTS} samples at equal distance steps), got "
                         f"{list(np.asarray(force).shape)}")
    if not np.isfinite(array).all():
        raise InputError(f"{source}: forces hold NaN or infinite values")
    array = array.astype(np.float32)
    if array.shape[1] != grid_points:
        old, new = np.linspace(0, 1, array.shape[1]), np.linspace(0, 1, grid_points)
        array = np.stack([np.interp(new, old, row) for row in array]).astype(np.float32)
    return array[:, None]


def curve_features(bundle: dict[str, Any], force: np.ndarray) -> np.ndarray:
    """The training preprocessing steps on ``[N, 1, grid_points]`` forces -> ``[N, C, L]``
    float32 (what ``afm.<input>.features`` holds for the training curves)."""
    features, _ = apply_feature_steps(np.asarray(force), bundle["steps"], sampling_rate=1.0)
    return np.ascontiguousarray(features, dtype=np.float32)


def classify_curves(bundle: dict[str, Any], force: Any, *, model: nn.Module | None = None,
                    source: str = "request") -> dict[str, np.ndarray]:
    """Class and probabilities of curves given as forces on their distance grids
    (see :func:`force_rows`).

    Returns:
        ``{"predicted": [N] int64 (class index), "class_name": [N] str, "probability": [N]
        float32 (of the predicted class), "probabilities": [N, K] float32 (classes in
        ``bundle["classes"]`` order)}``.
    """
    require_task(bundle, "afm")
    rows = force_rows(force, bundle["grid_points"], source=source)
    features = torch.from_numpy(curve_features(bundle, rows))
    model = model if model is not None else from_bundle(bundle["classifier"])
    with torch.no_grad():
        logits = model.head(embed(model, features))
    probabilities = torch.softmax(logits, dim=1).numpy().astype(np.float32)
    predicted = logits.argmax(dim=1).numpy().astype(np.int64)
    return {"predicted": predicted,
            "class_name": np.asarray(bundle["classes"])[predicted],
            "probability": probabilities[np.arange(len(predicted)), predicted],
            "probabilities": probabilities}
