"""``denoising_inference``: new sparse-view CT images or sinograms -> the HVAE's and the
U-Net's reconstructions as image files (``inference/denoising.py``, the function the MLflow
model ``denoising`` calls). Parameters ``inference.denoising`` (parameters_inference.yml);
files in docs/inference.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kedro.pipeline import Pipeline, node
from matplotlib.figure import Figure

from contrastive_signals.config import from_params, require_at_least
from contrastive_signals.inference import InputError
from contrastive_signals.inference.denoising import denoise, sparse_view_images
from contrastive_signals.pipelines.inference.nodes import (
    IMAGE_SUFFIXES,
    _input_files,
    _load,
    _raise_problems,
)
from contrastive_signals.plots.denoising import swap_figure

logger = logging.getLogger(__name__)
#: A ``.npy`` file whose name ends so holds sinograms ``[V, N]`` / ``[M, V, N]``.
SINOGRAM_SUFFIX = "_sinogram.npy"
#: Output images per input file: ``<stem>_<name>.npy`` (and ``.png`` per image).
OUTPUTS = {"unet": "U-Net", "hvae": "HVAE (swap)"}


@dataclass(frozen=True)
class DenoisingInferenceParams:
    """``inference.denoising``: which model, the input and output folders, the seed of the
    HVAE's swap donors (null: the training run's evaluation seed), the figure's rows."""

    input_folder: str
    output_folder: str = "data/07_model_output/inference/denoising"
    model: str | int = "latest"
    donor_seed: int | None = None
    plot_items: int = 6

    def __post_init__(self) -> None:
        require_at_least(self, ("plot_items",), 1)
        if self.donor_seed is not None and self.donor_seed < 0:
            raise ValueError(f"donor_seed must be >= 0 or null, got {self.donor_seed}")


def read_array_file(path: Path) -> np.ndarray:
    """An ``.npy`` array as stored, or an image file as grey values in [0, 1] (8-bit / 255,
    16-bit / 65535); errors name the file."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        from PIL import Image

        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(image, dtype=np.float32) / 65535.0
            return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except Exception as error:  # PIL and numpy raise several types for broken files
        raise InputError(f"{path.name}: unreadable ({type(error).__name__}: {error})") from None


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    pixels = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _write(stem: str, images: dict[str, np.ndarray], output: Path) -> list[str]:
    """``<stem>_<name>.npy`` ``[M, N, N]`` and one png per image (``<stem>_<name>.png``, or
    ``<stem>_<i>_<name>.png`` when the file held several)."""
    written = []
    for name, stack in images.items():
        written.append(output / f"{stem}_{name}.npy")
        np.save(written[-1], stack)
        for i, image in enumerate(stack):
            written.append(output / (f"{stem}_{name}.png" if len(stack) == 1
                                     else f"{stem}_{i}_{name}.png"))
            _save_png(image, written[-1])
    return [str(p) for p in written]


def denoising_inference(params: dict[str, Any]) -> tuple[dict[str, Any], Figure]:
    """Reconstruct every sparse-view image (``.npy`` ``[N, N]`` / ``[M, N, N]``, or an image
    file) and every sinogram (``*_sinogram.npy`` ``[V, N]`` / ``[M, V, N]``, back-projected
    first) of ``input_folder`` with the U-Net and the HVAE of the chosen model; write the
    reconstructions (and a sinogram's FBP, ``sparse_view``) into ``output_folder``.

    Returns:
        a summary ``{"model_uri", "donor_seed", "files": {file: {"kind", "images",
        "donor_index", "written"}}}`` and a figure of the first ``plot_items`` images.
    """
    config = from_params(DenoisingInferenceParams, params, path="inference.denoising")
    model, uri = _load("denoising", params)
    bundle, seed = model.bundle, config.donor_seed
    files = _input_files(config.input_folder, (".npy", *IMAGE_SUFFIXES),
                         "sparse-view images or sinograms")
    inputs, problems = [], []
    for path in files:
        kind = "sinogram" if path.name.lower().endswith(SINOGRAM_SUFFIX) else "image"
        try:
            inputs.append((path, kind, sparse_view_images(bundle, read_array_file(path),
                                                          kind=kind, source=path.name)))
        except InputError as error:
            problems.append(str(error))
    _raise_problems(problems, config.input_folder)
    output = Path(config.output_folder)
    output.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"model_uri": uri, "files": {},
                               "donor_seed": bundle["donor_seed"] if seed is None else int(seed)}
    shown: dict[str, list[np.ndarray]] = {"sparse view": [], **{v: [] for v in OUTPUTS.values()}}
    for path, kind, images in inputs:
        # Donors drawn per file from the seed: a file's results do not depend on the others.
        out = denoise(model.denoisers, images, donor_seed=seed)
        stem = path.name[:-len(SINOGRAM_SUFFIX)] if kind == "sinogram" else path.stem
        keep = {name: out[name] for name in OUTPUTS} | (
            {"sparse_view": out["sparse_view"]} if kind == "sinogram" else {})
        summary["files"][path.name] = {"kind": kind, "images": len(images),
                                       "donor_index": out["donor_index"].tolist(),
                                       "written": _write(stem, keep, output)}
        shown["sparse view"].extend(out["sparse_view"])
        for name, title in OUTPUTS.items():
            shown[title].extend(out[name])
    rows = min(len(shown["sparse view"]), config.plot_items)
    figure = swap_figure({title: np.stack(images[:rows]) for title, images in shown.items()},
                         title=f"denoising inference ({uri})")
    logger.info("denoising inference: %d image(s) in %d file(s) -> %s",
                sum(len(i) for *_, i in inputs), len(inputs), output)
    return summary, figure


def create_denoising_pipeline(**kwargs) -> Pipeline:
    return Pipeline([node(denoising_inference, "params:inference.denoising",
                          ["denoising_inference_summary", "denoising_inference_plot"],
                          name="denoising_inference")], tags="inference")
