"""Kedro datasets for a Sleep-EDF folder (``data/01_raw/sleep_edf/``).

- :class:`SyntheticSleepEdfDataset` writes generated recordings as EDF+ files (PSGs with
  MNE's EDF export, hypnograms as annotation-only EDF+ files with edfio) and lists the
  folder's files on load. It never touches real recordings: when the folder already holds
  Sleep-EDF files it did not write, a save writes nothing; when it holds other EDF files
  that the reader cannot pair (other names), a save refuses (no synthetic nights are
  trained on in place of the user's files).
- :class:`SleepEdfDataset` is read-only: it pairs, reads and validates every recording with
  :func:`contrastive_signals.data.sleep_edf.read_sleep_edf_folder` (and downloads Sleep-EDF
  first when ``download: true``).

The generator's files are listed in ``synthetic_recordings.json`` inside the folder, which
is how real and synthetic files are told apart: with real files present, the reader ignores
the synthetic ones.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from contrastive_signals.data.bad_files import problem_lines
from contrastive_signals.data.sleep_edf import (
    DEFAULT_CHANNELS,
    EPOCH_SECONDS,
    EXPECTED_NAMES,
    HYPNOGRAM_SUFFIX,
    PSG_SUFFIX,
    fetch_sleep_physionet,
    find_sleep_edf_files,
    parse_recording_name,
    read_sleep_edf_folder,
    unusable_edf_files,
)

logger = logging.getLogger(__name__)

MARKER = "synthetic_recordings.json"


def synthetic_file_names(folder: Path) -> set[str]:
    """Names of the files the generator wrote into ``folder`` (empty without a marker)."""
    marker = folder / MARKER
    if not marker.is_file():
        return set()
    return set(json.loads(marker.read_text())["files"])


def real_file_names(folder: Path) -> list[str]:
    """Sleep-EDF files in ``folder`` (recursively) that the generator did not write."""
    synthetic = synthetic_file_names(folder)
    return [p.name for p in find_sleep_edf_files(folder) if p.name not in synthetic]


def _temporary_path(path: Path) -> Path:
    """An empty sibling of ``path`` (same extension, so MNE's exporter accepts it) with the
    usual umask-based mode (mkstemp creates 0600 files)."""
    handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{path.name}", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def write_psg_edf(raw: Any, path: Path) -> None:
    """Export an MNE Raw as EDF+ via a temporary file renamed into place."""
    import mne

    tmp = _temporary_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE warns about EDF's 16-bit range
            mne.export.export_raw(tmp, raw, fmt="edf", overwrite=True, verbose="error")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_hypnogram_edf(annotations: Any, path: Path, *, patient_code: str = "X") -> None:
    """Write MNE Annotations as an annotation-only EDF+ file (Sleep-EDF's hypnogram format),
    readable by ``mne.read_annotations``."""
    import edfio

    start = annotations.orig_time
    kwargs: dict[str, Any] = {}
    if start is not None:
        kwargs = {"starttime": start.time().replace(microsecond=0),
                  "recording": edfio.Recording(startdate=start.date())}
    edf = edfio.Edf(
        signals=[],
        patient=edfio.Patient(code=patient_code),
        annotations=[edfio.EdfAnnotation(float(onset), float(duration), str(text))
                     for onset, duration, text in zip(annotations.onset, annotations.duration,
                                                      annotations.description, strict=True)],
        **kwargs,
    )
    tmp = _temporary_path(path)
    try:
        edf.write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _as_bool(value: Any, name: str) -> bool:
    """A flag from YAML or from ``--params`` (which may pass the text "true")."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    raise DatasetError(f"{name} must be true or false, got {value!r}")


class SyntheticSleepEdfDataset(AbstractDataset[dict[str, Any], list[str]]):
    """Saves ``{file name: mne.io.Raw | mne.Annotations}`` as EDF+ files into ``folder``;
    loads the sorted names of the Sleep-EDF files there (the real ones when present).

    Example catalog entry::

        sleep.synthetic_edf:
          type: contrastive_signals.io.sleep_edf_dataset.SyntheticSleepEdfDataset
          folder: data/01_raw/sleep_edf
    """

    def __init__(self, *, folder: str, metadata: dict[str, Any] | None = None) -> None:
        self._folder = Path(folder)
        self.metadata = metadata

    def load(self) -> list[str]:
        if not self._folder.is_dir():
            raise DatasetError(f"No folder '{self._folder}'; run the sleep generator node first.")
        real = real_file_names(self._folder)
        return sorted(real) if real else sorted(synthetic_file_names(self._folder))

    def save(self, data: dict[str, Any]) -> None:
        import mne

        self._folder.mkdir(parents=True, exist_ok=True)
        real = real_file_names(self._folder)
        if real:
            logger.warning("%s holds %d real Sleep-EDF file(s); the synthetic recordings are "
                           "not written", self._folder, len(real))
            return
        self._refuse_beside_unusable_files()
        for name, value in data.items():
            try:
                parse_recording_name(name)
            except ValueError as error:
                raise DatasetError(f"'{name}': {error}") from None
            if name.endswith(PSG_SUFFIX) and isinstance(value, mne.io.BaseRaw):
                continue
            if name.endswith(HYPNOGRAM_SUFFIX) and isinstance(value, mne.Annotations):
                continue
            raise DatasetError(f"'{name}': expected an mne Raw for *{PSG_SUFFIX} or mne "
                               f"Annotations for *{HYPNOGRAM_SUFFIX}, got {type(value).__name__}")
        # Replace an earlier synthetic set completely (it may have had more subjects).
        for old in synthetic_file_names(self._folder) - set(data):
            (self._folder / old).unlink(missing_ok=True)
        (self._folder / MARKER).unlink(missing_ok=True)
        for name, value in sorted(data.items()):
            if name.endswith(PSG_SUFFIX):
                write_psg_edf(value, self._folder / name)
            else:
                write_hypnogram_edf(value, self._folder / name, patient_code=name[:6])
        marker = {"generator": "contrastive_signals.data.sleep_synthetic", "files": sorted(data)}
        (self._folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n")

    def _refuse_beside_unusable_files(self) -> None:
        """Raise when the folder holds EDF files the reader cannot use (and no Sleep-EDF
        file): generated nights would silently replace the user's recordings."""
        unusable = unusable_edf_files(self._folder)
        if unusable:
            raise DatasetError(
                f"{self._folder} holds {len(unusable)} EDF file(s) that the Sleep-EDF reader "
                f"cannot pair:\n{problem_lines(unusable)}\nIt pairs {EXPECTED_NAMES}. Rename "
                "the files to that pattern, or move them out of the folder to train on generated nights; "
                "synthetic nights are not generated beside recordings that would go unused.")

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder)}

    def _exists(self) -> bool:
        return self._folder.is_dir() and bool(find_sleep_edf_files(self._folder))


class SleepEdfDataset(AbstractDataset[None, list[dict[str, Any]]]):
    """Read-only: every recording night of a Sleep-EDF folder, validated (see
    :func:`~contrastive_signals.data.sleep_edf.read_sleep_edf_folder` for the fields).

    Args:
        folder: the folder of ``*-PSG.edf`` / ``*-Hypnogram.edf`` files (searched recursively).
        channels: channels to read; every PSG must have them.
        keep_wake_minutes: wake kept before sleep onset and after the final awakening.
        download: fetch Sleep-EDF sleep-cassette nights with MNE first (needs network).
        download_subjects, download_nights: what to fetch (subjects 0-82, nights 1-2).

    Example catalog entry::

        sleep.edf_recordings:
          type: contrastive_signals.io.sleep_edf_dataset.SleepEdfDataset
          folder: data/01_raw/sleep_edf
          channels: [EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal]
    """

    def __init__(self, *, folder: str, channels: list[str] | None = None,
                 keep_wake_minutes: float = 30.0, epoch_seconds: float = EPOCH_SECONDS,
                 download: bool | str = False, download_subjects: list[int] | None = None,
                 download_nights: list[int] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._folder = Path(folder)
        self._channels = list(channels) if channels else list(DEFAULT_CHANNELS)
        self._keep_wake_minutes = float(keep_wake_minutes)
        self._epoch_seconds = float(epoch_seconds)
        self._download = _as_bool(download, "download")
        self._download_subjects = list(download_subjects) if download_subjects else list(range(10))
        self._download_nights = list(download_nights) if download_nights else [1, 2]
        self.metadata = metadata

    def load(self) -> list[dict[str, Any]]:
        if self._download:
            fetch_sleep_physionet(self._folder, subjects=self._download_subjects,
                                  recordings=self._download_nights)
        exclude: set[str] = set()
        if self._folder.is_dir() and real_file_names(self._folder):
            exclude = synthetic_file_names(self._folder)
        return read_sleep_edf_folder(self._folder, channels=self._channels,
                                     keep_wake_minutes=self._keep_wake_minutes,
                                     epoch_seconds=self._epoch_seconds, exclude=sorted(exclude))

    def save(self, data: Any) -> None:
        raise DatasetError("SleepEdfDataset is read-only: recordings are inputs, not outputs")

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder), "channels": self._channels,
                "keep_wake_minutes": self._keep_wake_minutes, "download": self._download}

    def _exists(self) -> bool:
        return self._folder.is_dir() and bool(find_sleep_edf_files(self._folder))
