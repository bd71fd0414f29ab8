"""Kedro dataset reading users' image folders: ``<path>/<name>/*.png|jpg|jpeg|tif|tiff``.

Loads ``{name: {file name: [H, W] float64 grey image in [0, 1]}}`` for every sub-folder
(colour images are converted to grey with scikit-image's ``rgb2gray``); a missing root folder
loads as ``{}`` so the embedded data sets work without any user images. Read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from contrastive_signals.data.bad_files import BadFilesError, read_each

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class ImageFilesError(BadFilesError):
    """One or more images are unreadable; the message names every one."""

    kind = "image"


def read_grey_image(path: Path) -> np.ndarray:
    """One image file -> ``[H, W]`` float64 in [0, 1] (integer types scaled by their
    maximum, float images kept as they are)."""
    from skimage import io
    from skimage.color import rgb2gray, rgba2rgb

    image = np.asarray(io.imread(path))
    if image.ndim == 3 and image.shape[-1] == 4:
        image = rgba2rgb(image)
    if image.ndim == 3 and image.shape[-1] == 3:
        return np.asarray(rgb2gray(image), dtype=np.float64)
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    return image.astype(np.float64)


class ImageFoldersDataset(AbstractDataset[Any, dict[str, dict[str, np.ndarray]]]):
    """``{folder name: {file name: image}}`` under ``path`` (see the module docstring)."""

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        if not self._path.exists():
            return {}
        folders = sorted(p for p in self._path.iterdir() if p.is_dir())
        files = [file for folder in folders for file in sorted(folder.iterdir())
                 if file.suffix.lower() in IMAGE_SUFFIXES]
        try:
            # scikit-image and its plugins raise many types for a broken file.
            images = read_each([(str(file), file) for file in files], read_grey_image,
                               error=ImageFilesError, catch=(Exception,), folder=self._path)
        except ImageFilesError as error:
            raise DatasetError(str(error)) from error
        loaded: dict[str, dict[str, np.ndarray]] = {folder.name: {} for folder in folders}
        for file, image in zip(files, images, strict=True):
            loaded[file.parent.name][file.name] = image
        return loaded

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return self._path.exists()
