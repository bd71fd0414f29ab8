"""AFM force-distance files through ``afmformats``: writing simulated curves, reading any
supported file (JPK ``.jpk-force``, afmformats ``.h5`` / ``.tab``, Igor ``.ibw``, ...),
validation, the bad-file policy and the common distance grid.

The simulator's curves are written with afmformats' own HDF5 exporter
(``AFMData.export_data(fmt="hdf5")``) and read back with ``afmformats.load_data``, the
same call that reads real files, so the real path always runs. A curve's class travels in
its ``curve id`` metadata as ``<id>:<class>`` (e.g. ``sim-00042:single_rupture``); curves
whose id carries no known class (real measurements) are unlabelled (label ``-1``).

Reading (:func:`read_afm_file`) is the only part that touches files; it raises
:class:`AfmFileError` naming the file. :func:`collect_curves` applies the ``on_bad_file``
policy over many files.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from contrastive_signals.data.afm_simulator import AFM_CLASSES
from contrastive_signals.data.bad_files import BadFilesError

logger = logging.getLogger(__name__)

UNLABELLED = -1
ON_BAD_FILE = ("raise", "report")
MIN_RETRACT_POINTS = 16


class AfmFileError(BadFilesError):
    """One or more AFM files are unusable. ``problems`` lists ``(file, problem)`` pairs and the
    message names every file."""

    kind = "AFM"


# ------------------------------------------------------------------------------- writing
def _afm_data(curve: Mapping[str, Any], *, path: Path, enum: int, sampling_rate: float):
    """An ``afmformats`` force-distance object (approach = segment 0, retract = segment 1)."""
    from afmformats.mod_force_distance import AFMForceDistance

    approach_z, retract_z = curve["approach_separation"], curve["separation"]
    n_approach, n_retract = len(approach_z), len(retract_z)
    # Piezo height above an arbitrary origin 1 um below the surface: it decreases on the
    # approach and increases on the retract, like a real ramp.
    height = np.concatenate([approach_z, retract_z]) + 1e-6
    data = {
        "force": np.concatenate([curve["approach_force"], curve["force"]]).astype(float),
        "height (piezo)": height.astype(float),
        "segment": np.r_[np.zeros(n_approach, np.uint8), np.ones(n_retract, np.uint8)],
        "time": np.arange(n_approach + n_retract, dtype=float) / sampling_rate,
    }
    metadata = {
        "imaging mode": "force-distance",
        "path": path,
        "enum": enum,
        "curve id": f"{curve['curve_id']}:{AFM_CLASSES[int(curve['label'])]}",
        "spring constant": float(curve["spring_constant"]),
        "point count": n_approach + n_retract,
        "rate approach": float(sampling_rate),
        "rate retract": float(sampling_rate),
        "duration": (n_approach + n_retract) / sampling_rate,
        "instrument": "contrastive_signals AFM simulator",
    }
    return AFMForceDistance(data=data, metadata=metadata)


def write_afm_hdf5(curves: Sequence[Mapping[str, Any]], path: str | Path, *,
                   sampling_rate: float) -> None:
    """Write curves from :func:`~contrastive_signals.data.afm_simulator.simulate_curves` as
    one afmformats HDF5 file (one group per curve), via a temporary file renamed into place
    so a crash never leaves a half-written file."""
    import h5py

    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        with h5py.File(tmp, "w") as h5:
            for enum, curve in enumerate(curves):
                _afm_data(curve, path=path, enum=enum,
                          sampling_rate=sampling_rate).export_data(h5, fmt="hdf5")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------- reading
def label_of_curve_id(curve_id: str | None) -> int:
    """``"sim-00042:single_rupture"`` -> 1; ids without a known class suffix -> ``-1``."""
    if not curve_id or ":" not in curve_id:
        return UNLABELLED
    suffix = curve_id.rsplit(":", 1)[1]
    return AFM_CLASSES.index(suffix) if suffix in AFM_CLASSES else UNLABELLED


@contextmanager
def _quiet_afmformats() -> Iterator[None]:
    """afmformats logs a full traceback at ERROR before re-raising a loader failure; the
    failure is reported here with the file's name instead."""
    afm_logger = logging.getLogger("afmformats")
    level = afm_logger.level
    afm_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        afm_logger.setLevel(level)


def supported_suffixes() -> list[str]:
    """File suffixes afmformats can read (``.h5``, ``.jpk-force``, ``.tab``, ...)."""
    import afmformats

    return list(afmformats.supported_extensions)


def _retract_curve(fd: Any, file: str) -> dict[str, Any]:
    """The validated retract segment of one afmformats force-distance object."""
    enum = fd.enum
    where = f"curve {enum}"
    if "segment" not in fd.columns:
        raise ValueError(f"{where}: no 'segment' column, so no retract segment")
    segment = np.asarray(fd["segment"])
    retract = segment == 1
    if retract.sum() < MIN_RETRACT_POINTS:
        raise ValueError(f"{where}: no retract segment ({int(retract.sum())} retract samples; "
                         f"need >= {MIN_RETRACT_POINTS})")
    for column in ("force", "height (piezo)"):
        if column not in fd.columns:
            raise ValueError(f"{where}: no '{column}' column (has {fd.columns})")
    force = np.asarray(fd["force"], dtype=float)[retract]
    height = np.asarray(fd["height (piezo)"], dtype=float)[retract]
    bad = ~(np.isfinite(force) & np.isfinite(height))
    if bad.any():
        raise ValueError(f"{where}: {int(bad.sum())} non-finite value(s) in the retract segment "
                         f"(first at retract sample {int(np.flatnonzero(bad)[0])})")
    distance = height - height[0]
    if distance[-1] < 0:  # piezo axis pointing the other way
        distance = -distance
    if not distance[-1] > 0:
        raise ValueError(f"{where}: the retract segment does not move away from the surface")
    curve_id = str(fd.metadata.get("curve id", "")) if "curve id" in fd.metadata else ""
    return {"file": file, "enum": int(enum), "curve_id": curve_id,
            "label": label_of_curve_id(curve_id), "distance": distance, "force": force}


def read_afm_file(path: str | Path, *, name: str | None = None) -> list[dict[str, Any]]:
    """Read every force-distance curve of one file with ``afmformats.load_data``.

    Args:
        path: the file.
        name: how the file is named in results and errors (default: its name).

    Returns:
        One dict per curve: ``{"file", "enum", "curve_id", "label" (int, -1 unlabelled),
        "distance" [L] m (>= 0, from the start of the retract), "force" [L] N}``, in the
        acquisition order of the retract segment (contact first).

    Raises:
        AfmFileError: naming the file: unreadable or unsupported, no curves, a curve
            without a retract segment, or non-finite values.
    """
    import afmformats
    from afmformats.errors import AFMFileFormatError, MissingMetaDataError

    path = Path(path)
    file = name or path.name
    try:
        with _quiet_afmformats():
            data = afmformats.load_data(path, modality="force-distance")
    except (Exception, AFMFileFormatError, MissingMetaDataError) as error:
        raise AfmFileError([(file, f"afmformats cannot read it ({type(error).__name__}: "
                                   f"{error})")]) from None
    if not data:
        raise AfmFileError([(file, "afmformats found no force-distance curve in it")])
    curves = []
    try:
        for fd in data:
            curves.append(_retract_curve(fd, file))
    except ValueError as error:
        raise AfmFileError([(file, str(error))]) from None
    except (Exception, AFMFileFormatError) as error:
        raise AfmFileError([(file, f"afmformats cannot read its data ({type(error).__name__}: "
                                   f"{error})")]) from None
    return curves


def find_afm_files(folder: str | Path) -> list[Path]:
    """Files under ``folder`` (recursively, sorted) whose suffix afmformats reads; hidden
    files (temporary writes) are skipped."""
    suffixes = set(supported_suffixes())
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes
                  and not p.name.startswith("."))


# ------------------------------------------------------------------------------- policy
def collect_curves(outcomes: Sequence[Mapping[str, Any]], *,
                   on_bad_file: Literal["raise", "report"] = "raise"
                   ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Apply the bad-file policy to per-file read outcomes.

    Args:
        outcomes: one ``{"file": name, "curves": [...]}`` or ``{"file": name, "error": str}``
            per file (what :class:`~contrastive_signals.io.afm_dataset.AfmCurveFolderDataset`
            loads).
        on_bad_file: ``"raise"``: any bad file raises one error naming all bad files;
            ``"report"``: bad files are logged and listed in the report, the rest load.

    Returns:
        ``(curves, report)`` with ``report = {"files": n, "curves": n, "bad_files": [{"file",
        "problem"}, ...]}``.

    Raises:
        AfmFileError: bad files under ``"raise"``, or no good curve at all.
        ValueError: an unknown policy.
    """
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}; got {on_bad_file!r}")
    if not outcomes:
        raise AfmFileError([("<no files>", "the AFM folder holds no file afmformats reads")])
    problems = [(o["file"], o["error"]) for o in outcomes if o.get("error") is not None]
    if problems and on_bad_file == "raise":
        raise AfmFileError(problems)
    for file, problem in problems:
        logger.warning("skipping bad AFM file %s: %s", file, problem)
    curves = [c for o in outcomes if o.get("error") is None for c in o["curves"]]
    if not curves:
        raise AfmFileError(problems or [("<all files>", "no curve loaded")])
    report = {"files": len(outcomes), "curves": len(curves),
              "bad_files": [{"file": f, "problem": p} for f, p in problems]}
    return curves, report


# ------------------------------------------------------------------------------- grid
def curves_to_grid(curves: Sequence[Mapping[str, Any]], *, points: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate every retract curve onto its own uniform distance grid of ``points``
    samples from its start (contact) to its furthest distance.

    Returns:
        ``(force [N, 1, points] float32 in N, spacing [N] float64 in m per sample)``.
    """
    if points < 2:
        raise ValueError(f"points must be >= 2; got {points}")
    forces = np.empty((len(curves), 1, points), dtype=np.float32)
    spacing = np.empty(len(curves))
    for i, curve in enumerate(curves):
        order = np.argsort(curve["distance"], kind="stable")
        distance, force = curve["distance"][order], curve["force"][order]
        grid = np.linspace(0.0, distance[-1], points)
        forces[i, 0] = np.interp(grid, distance, force)
        spacing[i] = grid[1] - grid[0]
    return forces, spacing


@dataclass(frozen=True)
class IngestionParams:
    """``on_bad_file``: :func:`collect_curves`'s policy; ``grid_points``: samples of the
    uniform distance grid every retract curve is put on."""

    on_bad_file: str = "raise"
    grid_points: int = 1024

    def __post_init__(self) -> None:
        if self.on_bad_file not in ON_BAD_FILE or self.grid_points < MIN_RETRACT_POINTS:
            raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE} and grid_points >= "
                             f"{MIN_RETRACT_POINTS}; got {self.on_bad_file!r}, {self.grid_points}")


def curves_dataset(outcomes: Sequence[Mapping[str, Any]], params: IngestionParams
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every good curve of the per-file read outcomes (:func:`collect_curves` with
    ``params.on_bad_file``) on its distance grid (:func:`curves_to_grid`).

    Returns:
        ``{"force": [N, 1, P] float32, "labels": [N] int64 (-1 unlabelled), "files",
        "curve_ids", "spacing_m": [N] float64}`` (tensors and lists) and the report
        (``files``, ``curves``, ``bad_files``, ``labelled_curves``).
    """
    curves, report = collect_curves(outcomes, on_bad_file=params.on_bad_file)
    force, spacing = curves_to_grid(curves, points=params.grid_points)
    labels = np.array([c["label"] for c in curves], dtype=np.int64)
    report["labelled_curves"] = int(np.sum(labels != UNLABELLED))
    return {"force": torch.from_numpy(force), "labels": torch.from_numpy(labels),
            "files": [c["file"] for c in curves], "curve_ids": [c["curve_id"] for c in curves],
            "spacing_m": torch.from_numpy(spacing)}, report
