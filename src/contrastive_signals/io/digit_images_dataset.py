"""A read-only Kedro dataset for labelled digit images from either source.

``source: digits`` uses scikit-learn's embedded 8x8 digits (no file needed);
``source: mnist`` reads MNIST's IDX files from ``folder`` and downloads them first only when
``download: true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from contrastive_signals.data.digits import download_mnist, embedded_digits, mnist_from_idx

SOURCES = ("digits", "mnist")


class DigitImagesDataset(AbstractDataset[None, dict[str, Any]]):
    """Loads ``{"images": [N, 1, 28, 28] float32 in [0, 1], "labels": [N] int64, "source": str}``."""

    def __init__(self, *, source: str = "digits", folder: str = "data/01_raw/mnist",
                 download: bool = False, metadata: dict[str, Any] | None = None) -> None:
        if source not in SOURCES:
            raise DatasetError(f"DigitImagesDataset: source must be one of {SOURCES}, got '{source}'")
        self._source = source
        self._folder = Path(folder)
        self._download = bool(download)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        if self._source == "digits":
            images, labels = embedded_digits()
        else:
            if self._download:
                download_mnist(self._folder)
            images, labels = mnist_from_idx(self._folder)
        return {"images": images, "labels": labels, "source": self._source}

    def save(self, data: Any) -> None:
        raise DatasetError("DigitImagesDataset is read-only: raw images are inputs, not outputs")

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "folder": str(self._folder), "download": self._download}

    def _exists(self) -> bool:
        return self._source == "digits" or (self._folder.exists() and any(self._folder.rglob("*idx*")))


