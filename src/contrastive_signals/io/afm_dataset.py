"""Kedro datasets for an AFM folder (``data/01_raw/afm/``).

- :class:`SimulatedAfmCurvesDataset` writes simulated curves as afmformats HDF5 files
  (``simulated-000.h5``, ... ``curves_per_file`` curves each) and lists them on load. Files
  it wrote are recorded in ``simulated_files.json``; a new save replaces exactly those and
  never touches other (real) files in the folder.
- :class:`AfmCurveFolderDataset` is read-only: it reads every file of the folder that
  afmformats supports (real JPK / Igor / tab / HDF5 files and the simulated ones alike) and
  loads one outcome per file, ``{"file", "curves"}`` or ``{"file", "error"}``, so that the
  ingestion node applies the ``on_bad_file`` parameter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from contrastive_signals.data.afm_curves import (
    AfmFileError,
    find_afm_files,
    read_afm_file,
    write_afm_hdf5,
)

MARKER = "simulated_files.json"


def simulated_file_names(folder: Path) -> list[str]:
    """Names of the files the simulator wrote into ``folder`` (empty without a marker)."""
    marker = folder / MARKER
    return list(json.loads(marker.read_text())["files"]) if marker.is_file() else []


class SimulatedAfmCurvesDataset(AbstractDataset[dict[str, Any], list[str]]):
    """Saves ``{"curves": [...], "sampling_rate": float}`` (from
    :func:`~contrastive_signals.data.afm_simulator.simulate_curves`) as afmformats HDF5
    files; loads the sorted names of the files written.

    Example catalog entry::

        afm.simulated_files:
          type: contrastive_signals.io.afm_dataset.SimulatedAfmCurvesDataset
          folder: data/01_raw/afm
          curves_per_file: 200
    """

    def __init__(self, *, folder: str, curves_per_file: int = 200, prefix: str = "simulated",
                 metadata: dict[str, Any] | None = None) -> None:
        if int(curves_per_file) < 1:
            raise DatasetError(f"curves_per_file must be >= 1, got {curves_per_file}")
        self._folder = Path(folder)
        self._per_file = int(curves_per_file)
        self._prefix = prefix
        self.metadata = metadata

    def load(self) -> list[str]:
        names = simulated_file_names(self._folder)
        if not names:
            raise DatasetError(f"No simulated AFM files in '{self._folder}'; run the "
                               f"simulator node first.")
        return sorted(names)

    def save(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict) or "curves" not in data or "sampling_rate" not in data:
            raise DatasetError("expected {'curves': [...], 'sampling_rate': float}")
        curves = data["curves"]
        self._folder.mkdir(parents=True, exist_ok=True)
        chunks = [curves[i:i + self._per_file] for i in range(0, len(curves), self._per_file)]
        names = [f"{self._prefix}-{i:03d}.h5" for i in range(len(chunks))]
        for old in set(simulated_file_names(self._folder)) - set(names):
            (self._folder / old).unlink(missing_ok=True)
        (self._folder / MARKER).unlink(missing_ok=True)
        for name, chunk in zip(names, chunks, strict=True):
            write_afm_hdf5(chunk, self._folder / name, sampling_rate=float(data["sampling_rate"]))
        marker = {"generator": "contrastive_signals.data.afm_simulator", "files": names}
        (self._folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n")

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder), "curves_per_file": self._per_file}

    def _exists(self) -> bool:
        return bool(simulated_file_names(self._folder))


class AfmCurveFolderDataset(AbstractDataset[None, list[dict[str, Any]]]):
    """Read-only: every afmformats-readable file under ``folder`` (recursively, sorted by
    path), one outcome per file: ``{"file": relative path, "curves": [...]}`` (see
    :func:`~contrastive_signals.data.afm_curves.read_afm_file`) or ``{"file": ...,
    "error": "why it cannot be used"}``.

    Example catalog entry::

        afm.raw_files:
          type: contrastive_signals.io.afm_dataset.AfmCurveFolderDataset
          folder: data/01_raw/afm
    """

    def __init__(self, *, folder: str, metadata: dict[str, Any] | None = None) -> None:
        self._folder = Path(folder)
        self.metadata = metadata

    def load(self) -> list[dict[str, Any]]:
        if not self._folder.is_dir():
            raise DatasetError(f"No AFM folder '{self._folder}'")
        outcomes = []
        for path in find_afm_files(self._folder):
            name = str(path.relative_to(self._folder))
            try:
                outcomes.append({"file": name, "curves": read_afm_file(path, name=name)})
            except AfmFileError as error:
                outcomes.append({"file": name, "error": error.problems[0][1]})
        return outcomes

    def save(self, data: Any) -> None:
        raise DatasetError("AfmCurveFolderDataset is read-only: raw curves are inputs")

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder)}

    def _exists(self) -> bool:
        return self._folder.is_dir() and bool(find_afm_files(self._folder))
