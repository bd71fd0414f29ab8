"""Inference nodes: read the files of the input folder, call the task's pure prediction
function (``inference/<task>.py``, the same one the MLflow model calls), write the results.

Folders and the model choice are parameters (``inference.<task>``, parameters_inference.yml);
docs/inference.md describes the files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from contrastive_signals.data.bad_files import BadFilesError
from contrastive_signals.data.sleep_edf import ANNOTATION_OF_STAGE, read_psg
from contrastive_signals.inference import InputError
from contrastive_signals.inference.digits import check_digit_images, image_shape, predict_digits
from contrastive_signals.inference.sleep import stage_night, stages_table
from contrastive_signals.io.mlflow_models import load_task_model, model_uri
from contrastive_signals.plots.hypnogram import predicted_hypnogram_figure
from contrastive_signals.plots.neighbours import neighbours_figure

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class InferenceInputError(ValueError):
    """Files of the input folder cannot be used; the message names every one of them."""


def _input_files(folder: str, suffixes: tuple[str, ...], what: str) -> list[Path]:
    path = Path(folder)
    files = sorted(p for p in path.glob("*") if p.suffix.lower() in suffixes) if path.is_dir() else []
    if not files:
        raise InferenceInputError(f"no {what} in {folder} (expected files ending in "
                                  f"{', '.join(suffixes)}); see docs/inference.md")
    return files


def _raise_problems(problems: list[str], folder: str) -> None:
    if problems:
        raise InferenceInputError(f"{len(problems)} unusable file(s) in {folder}:\n  - "
                                  + "\n  - ".join(problems))


def _load(task: str, params: dict[str, Any]):
    uri = model_uri(task, params.get("model", "latest"))
    logger.info("%s inference with the model %s", task, uri)
    return load_task_model(uri), uri


# --------------------------------------------------------------------------- digits


def read_digit_file(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """``[N, H, W]`` float32 in [0, 1] from an image (8-bit grey, or colour made grey) or a
    ``.npy`` array ``[H, W]`` / ``[N, H, W]``; errors name the file."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as image:
                array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except Exception as error:  # PIL and numpy raise several types for broken files
        raise InputError(f"{path.name}: unreadable ({type(error).__name__}: {error})") from None
    return check_digit_images(array, shape, source=path.name)


def digits_inference(params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any], Figure]:
    """Embeddings and nearest training digits of every file in ``input_folder``.

    Returns:
        the predictions table (one row per image: file, item, predicted label, the k
        neighbours' labels, distances and training rows), the embeddings
        ``{"model_uri", "files", "items", "embedding"}`` and the neighbours' picture.
    """
    model, uri = _load("digits", params)
    shape = image_shape(model.bundle)
    files = _input_files(params["input_folder"], (".npy", *IMAGE_SUFFIXES), "digit images")
    arrays, problems = [], []
    for path in files:
        try:
            arrays.append((path.name, read_digit_file(path, shape)))
        except InputError as error:
            problems.append(str(error))
    _raise_problems(problems, params["input_folder"])
    images = np.concatenate([a for _, a in arrays])
    names = [name for name, a in arrays for _ in range(len(a))]
    items = [i for _, a in arrays for i in range(len(a))]
    out = predict_digits(model.bundle, images, model=model.model)
    table = pd.DataFrame({"file": names, "item": items, "predicted_label": out["predicted_label"]})
    k = out["neighbour_label"].shape[1]
    for j in range(k):
        table[f"neighbour_{j + 1}_label"] = out["neighbour_label"][:, j]
        table[f"neighbour_{j + 1}_distance"] = out["neighbour_distance"][:, j]
        table[f"neighbour_{j + 1}_train_row"] = out["neighbour_index"][:, j]
    shown = slice(0, min(len(images), int(params.get("plot_items", 12))))
    train_images = model.bundle["train_images"].numpy()
    figure = neighbours_figure(images[shown], train_images[out["neighbour_index"][shown]],
                               out["neighbour_label"][shown], out["neighbour_distance"][shown],
                               names=[f"{n}[{i}]" for n, i in zip(names, items, strict=True)][shown],
                               title=f"nearest training digits ({model.bundle['encoder_name']})")
    embeddings = {"model_uri": uri, "files": names, "items": items,
                  "embedding": out["embedding"].tolist()}
    return table, embeddings, figure


# ---------------------------------------------------------------------------- sleep


def sleep_inference(params: dict[str, Any]) -> dict[str, Any]:
    """Stage every PSG (``*.edf``, no hypnogram needed) of ``input_folder``; for each night
    write ``<stem>_stages.csv`` (onset, stage, probabilities), ``<stem>_hypnogram.png`` and
    ``<stem>_stages-Annotations.edf`` (EDF+ annotations that ``mne.read_annotations`` reads)
    into ``output_folder``.

    Returns:
        a summary ``{"model_uri", "nights": {file: {"epochs", "stage_counts", "files"}}}``.
    """
    from mne import Annotations

    from contrastive_signals.io.sleep_edf_dataset import write_hypnogram_edf

    model, uri = _load("sleep", params)
    bundle = model.bundle
    files = [p for p in _input_files(params["input_folder"], (".edf",), "EDF+ recordings")
             if not p.name.endswith("-Hypnogram.edf")]
    nights, problems = [], []
    for path in files:
        try:
            signals, rate = read_psg(path, channels=bundle["channels"])
            nights.append((path, stage_night(bundle, signals, rate, model=model.model,
                                             source=path.name)))
        except (BadFilesError, InputError) as error:
            problems.append(str(error).replace("\n", " "))
    _raise_problems(problems, params["input_folder"])
    output = Path(params["output_folder"])
    output.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"model_uri": uri, "nights": {}}
    stages = list(bundle["stager"]["stages"])
    for path, out in nights:
        stem = path.name.removesuffix(".edf")
        table = stages_table(out)
        written = [output / f"{stem}_stages.csv", output / f"{stem}_hypnogram.png",
                   output / f"{stem}_stages-Annotations.edf"]
        table.to_csv(written[0], index=False)
        figure = predicted_hypnogram_figure(out["stage"], out["probabilities"], stage_names=stages,
                                            title=f"sleep: predicted hypnogram of {path.name}",
                                            epoch_seconds=bundle["epoch_seconds"])
        figure.savefig(written[1], dpi=100)
        write_hypnogram_edf(Annotations(onset=out["onset"],
                                        duration=np.full(len(out["onset"]), bundle["epoch_seconds"]),
                                        description=[ANNOTATION_OF_STAGE[s] for s in out["stage"]]),
                            written[2])
        summary["nights"][path.name] = {
            "epochs": len(out["stage"]),
            "stage_counts": {name: int((out["stage"] == j).sum()) for j, name in enumerate(stages)},
            "files": [str(p) for p in written]}
    logger.info("sleep inference: %s", json.dumps({k: v["epochs"] for k, v in summary["nights"].items()}))
    return summary
