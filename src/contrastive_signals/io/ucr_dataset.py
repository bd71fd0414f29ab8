"""Kedro dataset for UCR/UEA classification archives (read-only).

``load()`` returns ``{name: callable}`` for every dataset found (as kedro's PartitionedDataset
does): calling ``archive["GunPoint"]()`` reads and validates that dataset's files with
:func:`contrastive_signals.data.ucr.load_ucr_dataset`. Nothing is read until asked for, so a
pipeline that names two sets reads two, and a node can list the known names in its errors.

Example catalog entry::

    timeseries.ucr_archive:
      type: contrastive_signals.io.ucr_dataset.UcrArchiveDataset
      folder: data/01_raw/ucr          # <Name>/<Name>_TRAIN.ts and _TEST.ts (or .arff)
      include_bundled: true            # aeon's bundled sets (never downloaded)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from contrastive_signals.data.ucr import available_datasets, bundled_ucr_root, load_ucr_dataset


class UcrArchiveDataset(AbstractDataset[None, dict[str, Callable[..., dict[str, Any]]]]):
    """The user folder first, then (optionally) aeon's bundled sets; user files win."""

    def __init__(self, *, folder: str, include_bundled: bool = True,
                 metadata: dict[str, Any] | None = None) -> None:
        self._folder = Path(folder)
        self._include_bundled = include_bundled
        self.metadata = metadata

    def _roots(self) -> list[Path]:
        return [self._folder] + ([bundled_ucr_root()] if self._include_bundled else [])

    def load(self) -> dict[str, Callable[..., dict[str, Any]]]:
        files = available_datasets(self._roots())
        return {name: partial(load_ucr_dataset, name, files) for name in sorted(files)}

    def save(self, data: None) -> None:
        raise DatasetError("UcrArchiveDataset is read-only: place <Name>/<Name>_TRAIN.ts and "
                           f"<Name>_TEST.ts under {self._folder}")

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder), "include_bundled": self._include_bundled}

    def _exists(self) -> bool:
        return bool(available_datasets(self._roots()))
