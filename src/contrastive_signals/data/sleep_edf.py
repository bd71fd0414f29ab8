"""Sleep-EDF (PhysioNet sleep-cassette) EDF+ recordings: pairing, reading, validation,
stage mapping, trimming, preprocessing, 30-second epochs and subject splits.

Layout (PhysioNet's ``sleep-cassette`` folder, also what the synthetic generator writes)::

    SC4ssNE0-PSG.edf          signals of subject ss, night N
    SC4ssNEx-Hypnogram.edf    its sleep-stage annotations (x: the scoring technician's letter)

A PSG and its hypnogram share their first 6 characters ``SC4ssN``. Stages follow the
AASM grouping: ``Sleep stage W/1/2/3/4/R`` become W, N1, N2, N3 (R&K stages 3 and 4
merged), REM; ``Sleep stage ?`` and ``Movement time`` epochs are dropped.

Reading (:func:`read_sleep_edf_folder`) is the only part that touches files; it checks every
recording and raises one :class:`SleepEdfError` that lists every bad file. The rest works
on arrays.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from contrastive_signals.data.bad_files import BadFilesError, problem_lines, read_each
from contrastive_signals.signal.filters import bandpass, resample

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")
NUM_STAGES = len(STAGES)
EPOCH_SECONDS = 30.0
DROPPED = -1  # label of epochs without a usable stage ("?", movement, unscored)

#: Hypnogram annotation text -> stage index in :data:`STAGES`.
STAGE_OF_ANNOTATION: dict[str, int] = {
    "Sleep stage W": 0,
    "Sleep stage 1": 1,
    "Sleep stage 2": 2,
    "Sleep stage 3": 3,
    "Sleep stage 4": 3,
    "Sleep stage R": 4,
}
#: Annotations that are valid but carry no stage: their epochs are dropped.
DROPPED_ANNOTATIONS: frozenset[str] = frozenset({"Sleep stage ?", "Movement time"})
KNOWN_ANNOTATIONS: frozenset[str] = frozenset(STAGE_OF_ANNOTATION) | DROPPED_ANNOTATIONS

DEFAULT_CHANNELS: tuple[str, ...] = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")
PSG_SUFFIX = "-PSG.edf"
HYPNOGRAM_SUFFIX = "-Hypnogram.edf"
# SC4ssN (sleep cassette) or ST7ssN (sleep telemetry): study, subject ss, night N.
_NAME = re.compile(r"^(SC4|ST7)(\d{2})(\d)")


class SleepEdfError(BadFilesError):
    """One or more recordings are unusable. ``problems`` lists ``(file, problem)`` pairs, one
    per bad file, and the message names them all."""

    kind = "Sleep-EDF"


@dataclass(frozen=True)
class SleepEdfPair:
    """One recording night: its PSG, its hypnogram (None when missing), subject and night."""

    key: str  # SC4ssN
    psg: Path | None
    hypnogram: Path | None
    subject: int
    night: int


def parse_recording_name(name: str) -> tuple[str, int, int]:
    """``"SC4012E0-PSG.edf"`` -> ``("SC4012", 1, 2)``: the pairing key, subject id and night.

    Subject ids are the two digits ``ss`` for the sleep-cassette study (SC4) and
    ``100 + ss`` for the telemetry study (ST7), so the two never collide.

    Raises:
        ValueError: for a name that does not follow Sleep-EDF's scheme.
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError("name does not follow Sleep-EDF's SC4ssN... / ST7ssN... scheme")
    study, subject, night = match.group(1), int(match.group(2)), int(match.group(3))
    return match.group(0), subject + (100 if study == "ST7" else 0), night


def psg_file_name(subject: int, night: int) -> str:
    """Sleep-cassette PSG file name of ``subject`` (0-99) and ``night``: ``SC4ssNE0-PSG.edf``."""
    return f"SC4{subject:02d}{night}E0{PSG_SUFFIX}"


def hypnogram_file_name(subject: int, night: int, technician: str = "C") -> str:
    """Sleep-cassette hypnogram file name: ``SC4ssNE<technician>-Hypnogram.edf``."""
    return f"SC4{subject:02d}{night}E{technician}{HYPNOGRAM_SUFFIX}"


# ------------------------------------------------------------------------- pairing


def pair_sleep_edf_files(paths: Sequence[Path]) -> tuple[list[SleepEdfPair], list[tuple[str, str]]]:
    """Pair each ``*-PSG.edf`` with the ``*-Hypnogram.edf`` of the same ``SC4ssN`` in the same
    folder.

    Returns:
        the pairs (sorted by key; ``psg`` or ``hypnogram`` None where one is missing) and the
        naming problems found ``(file, problem)`` (bad names, duplicate hypnograms).
    """
    problems: list[tuple[str, str]] = []
    groups: dict[tuple[Path, str], dict[str, list[Path]]] = {}
    for path in sorted(paths):
        kind = "psg" if path.name.endswith(PSG_SUFFIX) else (
            "hypnogram" if path.name.endswith(HYPNOGRAM_SUFFIX) else None)
        if kind is None:
            continue
        try:
            key, _, _ = parse_recording_name(path.name)
        except ValueError as error:
            problems.append((path.name, str(error)))
            continue
        groups.setdefault((path.parent, key), {"psg": [], "hypnogram": []})[kind].append(path)
    pairs = []
    for (_, key), found in sorted(groups.items(), key=lambda item: (item[0][1], str(item[0][0]))):
        if len(found["hypnogram"]) > 1:
            names = ", ".join(p.name for p in found["hypnogram"])
            problems.append((found["psg"][0].name if found["psg"] else key,
                             f"several hypnograms for one recording ({names})"))
            continue
        _, subject, night = parse_recording_name(key)
        pairs.append(SleepEdfPair(
            key=key, psg=found["psg"][0] if found["psg"] else None,
            hypnogram=found["hypnogram"][0] if found["hypnogram"] else None,
            subject=subject, night=night))
    return pairs, problems


# ------------------------------------------------------------------ header checks


@dataclass(frozen=True)
class EdfHeader:
    """The fields of an EDF/EDF+ header needed to validate a file."""

    n_records: int
    record_seconds: float
    labels: tuple[str, ...]
    samples_per_record: tuple[int, ...]
    header_bytes: int

    @property
    def duration_seconds(self) -> float:
        return self.n_records * self.record_seconds

    @property
    def expected_bytes(self) -> int:
        return self.header_bytes + self.n_records * sum(self.samples_per_record) * 2


def read_edf_header(path: Path) -> EdfHeader:
    """Parse the fixed-width EDF header of ``path`` and check the file holds every data record
    the header announces (MNE silently reads fewer records from a truncated file).

    Raises:
        ValueError: describing what is wrong (not an EDF file, bad field, truncated).
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        fixed = handle.read(256)
        if len(fixed) < 256 or fixed[:8] != b"0       ":
            raise ValueError(f"not an EDF file (corrupt header; {size} bytes)")
        try:
            header_bytes = int(fixed[184:192].decode("ascii").strip())
            n_records = int(fixed[236:244].decode("ascii").strip())
            record_seconds = float(fixed[244:252].decode("ascii").strip())
            n_signals = int(fixed[252:256].decode("ascii").strip())
        except ValueError as error:
            raise ValueError(f"corrupt EDF header ({error})") from None
        if n_signals < 0 or header_bytes != 256 * (n_signals + 1):
            raise ValueError(f"corrupt EDF header ({n_signals} signals but {header_bytes} header bytes)")
        signal_header = handle.read(256 * n_signals)
    if len(signal_header) < 256 * n_signals:
        raise ValueError(f"truncated EDF file: the header is incomplete ({size} bytes)")
    labels = tuple(signal_header[16 * i:16 * (i + 1)].decode("latin-1").strip()
                   for i in range(n_signals))
    offset = 216 * n_signals
    try:
        samples = tuple(int(signal_header[offset + 8 * i:offset + 8 * (i + 1)].decode("ascii").strip())
                        for i in range(n_signals))
    except ValueError as error:
        raise ValueError(f"corrupt EDF header ({error})") from None
    if n_records < 0:
        raise ValueError(f"EDF header gives {n_records} data records (recording not closed)")
    header = EdfHeader(n_records, record_seconds, labels, samples, header_bytes)
    if size < header.expected_bytes:
        raise ValueError(
            f"truncated EDF file: {size} bytes, the header announces {n_records} data records "
            f"({header.expected_bytes} bytes)")
    return header


# ---------------------------------------------------------------- hypnogram labels


def epoch_labels(onset: np.ndarray, duration: np.ndarray, description: Sequence[str], *,
                 n_epochs: int, epoch_seconds: float = EPOCH_SECONDS) -> np.ndarray:
    """Stage index per ``epoch_seconds`` epoch from hypnogram annotations.

    An epoch takes the stage of the annotation that covers its midpoint; epochs covered by
    ``Sleep stage ?``, ``Movement time`` or nothing are :data:`DROPPED` (-1).

    Args:
        onset, duration: ``[A]`` seconds from the recording start.
        description: ``[A]`` annotation texts (all must be in :data:`KNOWN_ANNOTATIONS`).
        n_epochs: epochs in the recording.

    Returns:
        ``[n_epochs]`` int64 labels in ``{-1, 0..4}``.

    Raises:
        ValueError: naming unknown annotation texts.
    """
    unknown = sorted(set(description) - KNOWN_ANNOTATIONS)
    if unknown:
        raise ValueError(f"unknown stage annotation(s) {unknown}; expected {sorted(KNOWN_ANNOTATIONS)}")
    labels = np.full(n_epochs, DROPPED, dtype=np.int64)
    midpoints = (np.arange(n_epochs) + 0.5) * epoch_seconds
    for start, length, text in zip(np.asarray(onset, float), np.asarray(duration, float),
                                   description, strict=True):
        first, stop = np.searchsorted(midpoints, [start, start + length], side="left")
        labels[first:stop] = STAGE_OF_ANNOTATION.get(text, DROPPED)
    return labels


def sleep_period_window(labels: np.ndarray, *, keep_wake_epochs: int) -> tuple[int, int]:
    """``[start, stop)`` epoch range from ``keep_wake_epochs`` before the first sleep epoch
    (any stage but W) to ``keep_wake_epochs`` after the last one, clipped to the recording.

    Raises:
        ValueError: when no epoch is scored as sleep.
    """
    if keep_wake_epochs < 0:
        raise ValueError(f"keep_wake_epochs must be >= 0, got {keep_wake_epochs}")
    asleep = np.flatnonzero(labels > 0)
    if asleep.size == 0:
        raise ValueError("the hypnogram scores no sleep epoch (only wake or unscored)")
    return (max(0, int(asleep[0]) - keep_wake_epochs),
            min(len(labels), int(asleep[-1]) + 1 + keep_wake_epochs))


# ------------------------------------------------------------------------- reading


class _BadFile(SleepEdfError):
    """A problem of one named file (the PSG or its hypnogram)."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__([(file, problem)])


def _read_pair(pair: SleepEdfPair, *, channels: Sequence[str], keep_wake_minutes: float,
               epoch_seconds: float) -> dict[str, Any]:
    """Read and validate one recording; raise :class:`_BadFile` naming the file at fault."""
    import mne  # imported here: reading is the only part that needs MNE

    psg, hypnogram = pair.psg.name, pair.hypnogram.name
    try:
        header = read_edf_header(pair.psg)
    except ValueError as error:
        raise _BadFile(psg, str(error)) from None
    missing = [c for c in channels if c not in header.labels]
    if missing:
        raise _BadFile(psg, f"missing channel(s) {missing}; the file has {list(header.labels)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne.io.read_raw_edf(pair.psg, include=list(channels), preload=False,
                                      verbose="error")
    except Exception as error:  # MNE raises several types for broken files
        raise _BadFile(psg, f"MNE cannot read the PSG ({error})") from None
    fs = float(raw.info["sfreq"])
    samples = round(epoch_seconds * fs)
    n_epochs = int(raw.n_times // samples)
    recording_seconds = raw.n_times / fs

    annotations = _read_hypnogram(pair.hypnogram)
    descriptions = [str(d) for d in annotations.description]
    try:
        labels = epoch_labels(annotations.onset, annotations.duration, descriptions,
                              n_epochs=n_epochs, epoch_seconds=epoch_seconds)
    except ValueError as error:
        raise _BadFile(hypnogram, str(error)) from None
    scored = [i for i, d in enumerate(descriptions) if d != "Sleep stage ?"]
    scored_end = max((float(annotations.onset[i] + annotations.duration[i]) for i in scored),
                     default=0.0)
    # A partial last epoch is tolerated (it is dropped); more is a mismatched pair.
    if scored_end > recording_seconds + epoch_seconds:
        raise _BadFile(hypnogram, f"hypnogram longer than its recording: it scores "
                                  f"{scored_end / 60:.1f} min but {psg} lasts "
                                  f"{recording_seconds / 60:.1f} min")
    try:
        start, stop = sleep_period_window(
            labels, keep_wake_epochs=round(keep_wake_minutes * 60 / epoch_seconds))
    except ValueError as error:
        raise _BadFile(hypnogram, str(error)) from None
    try:
        signals = raw.get_data(picks=list(channels), start=start * samples, stop=stop * samples)
    except Exception as error:
        raise _BadFile(psg, f"MNE cannot read the PSG signals ({error})") from None
    return {
        "name": pair.key, "subject": pair.subject, "night": pair.night,
        "psg_file": pair.psg.name, "hypnogram_file": pair.hypnogram.name,
        "channels": list(channels), "sampling_rate": fs,
        "signals": signals.astype(np.float32),        # [C, (stop - start) * samples] volts
        "labels": labels[start:stop],                  # [stop - start] in {-1, 0..4}
        "first_epoch": start,
    }


def _read_hypnogram(path: Path):
    import mne

    try:
        read_edf_header(path)
    except ValueError as error:
        raise _BadFile(path.name, str(error)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            annotations = mne.read_annotations(path)
    except Exception as error:
        raise _BadFile(path.name, f"MNE cannot read the hypnogram ({error})") from None
    if len(annotations) == 0:
        raise _BadFile(path.name, "the hypnogram holds no annotation")
    return annotations


def find_sleep_edf_files(folder: Path) -> list[Path]:
    """Every ``*-PSG.edf`` and ``*-Hypnogram.edf`` below ``folder`` (recursively, as
    ``mne.datasets.sleep_physionet`` stores its downloads in a subfolder)."""
    return sorted(p for p in folder.rglob("*.edf")
                  if p.name.endswith((PSG_SUFFIX, HYPNOGRAM_SUFFIX)))


#: The file names the reader pairs, for messages about the files it cannot use.
EXPECTED_NAMES = (f"SC4ssNE0{PSG_SUFFIX} with its SC4ssNEx{HYPNOGRAM_SUFFIX} (ss: subject, N: "
                  "night, x: the scorer's letter; ST7ssN... for the telemetry study)")
#: Sleep-EDF's 2002 release (EDF with other extensions), which the reader does not read.
OLD_RELEASE_SUFFIXES = (".rec", ".hyp")


def unusable_edf_files(folder: str | Path) -> list[tuple[str, str]]:
    """EDF files below ``folder`` (recursively) that the reader never looks at, as
    ``(path relative to folder, why)``: ``*.edf`` (any case) not named ``*-PSG.edf`` or
    ``*-Hypnogram.edf``, and the 2002 release's ``.rec`` / ``.hyp`` files."""
    folder = Path(folder)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix == ".edf" and not path.name.endswith((PSG_SUFFIX, HYPNOGRAM_SUFFIX)):
            why = f"not named *{PSG_SUFFIX} or *{HYPNOGRAM_SUFFIX}"
        elif suffix in OLD_RELEASE_SUFFIXES:
            why = "a file of Sleep-EDF's 2002 release (.rec/.hyp); use the EDF+ release"
        else:
            continue
        found.append((str(path.relative_to(folder)), why))
    return found


def warn_unusable_edf_files(folder: str | Path) -> None:
    """Log one warning naming every file of :func:`unusable_edf_files`."""
    unusable = unusable_edf_files(folder)
    if unusable:
        logger.warning("%s holds %d EDF file(s) that are not used (the reader pairs %s):\n%s",
                       folder, len(unusable), EXPECTED_NAMES, problem_lines(unusable))


def read_sleep_edf_folder(
    folder: str | Path,
    *,
    channels: Sequence[str] = DEFAULT_CHANNELS,
    keep_wake_minutes: float = 30.0,
    epoch_seconds: float = EPOCH_SECONDS,
    exclude: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Read every recording night in ``folder`` and validate all of them before returning.

    Each PSG is paired with its hypnogram; signals are read for ``channels`` only and for
    the sleep period plus ``keep_wake_minutes`` of wake on either side. EDF files the reader
    cannot use because of their names (:func:`unusable_edf_files`) are named in a warning.

    Args:
        folder: the Sleep-EDF folder.
        channels: channel names to read (all must exist in every PSG).
        keep_wake_minutes: wake kept before the first and after the last sleep epoch.
        epoch_seconds: scoring epoch length (30 s for Sleep-EDF).
        exclude: file names to ignore (e.g. synthetic files next to real ones).

    Returns:
        One dict per recording, sorted by name: ``name`` (``SC4ssN``), ``subject``, ``night``,
        ``psg_file``, ``hypnogram_file``, ``channels``, ``sampling_rate``, ``signals``
        ``[C, E * epoch_seconds * sampling_rate]`` float32 volts, ``labels`` ``[E]`` int64 in
        ``{-1, 0..4}`` (-1: dropped) and ``first_epoch`` (epochs trimmed off the start).

    Raises:
        SleepEdfError: listing every bad file (a PSG without hypnogram or the reverse, bad
            names, unknown stage texts, missing channels, truncated or corrupt files, a
            hypnogram longer than its recording), or when the folder holds no PSG.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SleepEdfError([(str(folder), "folder does not exist")])
    excluded = set(exclude)
    warn_unusable_edf_files(folder)
    files = [p for p in find_sleep_edf_files(folder) if p.name not in excluded]
    pairs, problems = pair_sleep_edf_files(files)
    for pair in pairs:
        if pair.psg is None:
            problems.append((pair.hypnogram.name, f"hypnogram without its PSG (expected {pair.key}E0{PSG_SUFFIX})"))
        elif pair.hypnogram is None:
            problems.append((pair.psg.name, f"PSG without its hypnogram (expected {pair.key}E?{HYPNOGRAM_SUFFIX})"))
    complete = [(pair.key, pair) for pair in pairs if pair.psg is not None and pair.hypnogram is not None]
    recordings = read_each(complete, partial(_read_pair, channels=channels,
                                             keep_wake_minutes=keep_wake_minutes,
                                             epoch_seconds=epoch_seconds),
                           error=SleepEdfError, catch=(), problems=problems, folder=folder)
    if not recordings:
        raise SleepEdfError([(str(folder), f"no *{PSG_SUFFIX} recordings found")])
    return recordings


def fetch_sleep_physionet(folder: str | Path, *, subjects: Sequence[int],
                          recordings: Sequence[int] = (1, 2)) -> list[list[str]]:
    """Download Sleep-EDF sleep-cassette nights with MNE into ``folder`` (needs network; never
    called by default or in tests). Returns MNE's ``[[psg, hypnogram], ...]`` paths."""
    from mne.datasets.sleep_physionet.age import fetch_data

    Path(folder).mkdir(parents=True, exist_ok=True)
    return fetch_data(subjects=list(subjects), recording=list(recordings), path=str(folder),
                      on_missing="warn")


# ------------------------------------------------------------------ preprocessing


def preprocess_signals(signals: np.ndarray, *, sampling_rate: float, low_hz: float, high_hz: float,
                       target_hz: float, filter_order: int = 4) -> np.ndarray:
    """Band-pass at the source rate, then resample to ``target_hz``.

    Args:
        signals: ``[C, L]`` at ``sampling_rate``.

    Returns:
        ``[C, L']`` float32 at ``target_hz`` (``L' = ceil(L * target_hz / sampling_rate)``).
    """
    batch = np.asarray(signals, dtype=np.float64)[None]
    filtered = bandpass(batch, sampling_rate=sampling_rate, low_hz=low_hz, high_hz=high_hz,
                        order=filter_order)
    if not np.isclose(sampling_rate, target_hz):
        filtered = resample(filtered, from_hz=sampling_rate, to_hz=target_hz)
    return filtered[0].astype(np.float32)


def normalize_channels(signals: np.ndarray, *, method: str = "robust", clip: float | None = None
                       ) -> np.ndarray:
    """Scale each channel of a whole recording ``[C, L]`` to zero centre and unit spread.

    ``robust``: median and 1.4826 x median absolute deviation (outlier-proof, equal to the
    standard deviation for Gaussian data); ``std``: mean and standard deviation; ``none``:
    unchanged. Statistics are per recording, so amplitude differences between stages (the
    large delta waves of N3) survive. ``clip`` bounds the result to ``[-clip, clip]``.
    """
    x = np.asarray(signals, dtype=np.float32)
    if method == "none":
        out = x.copy()
    elif method == "robust":
        centre = np.median(x, axis=1, keepdims=True)
        scale = 1.4826 * np.median(np.abs(x - centre), axis=1, keepdims=True)
        out = (x - centre) / np.maximum(scale, 1e-12)
    elif method == "std":
        centre = x.mean(axis=1, keepdims=True)
        out = (x - centre) / np.maximum(x.std(axis=1, keepdims=True), 1e-12)
    else:
        raise ValueError(f"method must be 'robust', 'std' or 'none', got '{method}'")
    if clip is not None:
        np.clip(out, -clip, clip, out=out)
    return out


def epoch_signals(signals: np.ndarray, labels: np.ndarray, *, samples_per_epoch: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``[C, L]`` into ``[E, C, samples_per_epoch]`` epochs and drop the unlabelled ones.

    Args:
        signals: ``[C, L]`` with ``L >= E * samples_per_epoch`` (a partial tail is ignored).
        labels: ``[E]`` in ``{-1, 0..4}``.

    Returns:
        epochs ``[E', C, samples_per_epoch]``, their labels ``[E']`` and their positions
        ``[E']`` in the original epoch sequence (so gaps from dropped epochs stay visible).
    """
    n_epochs = len(labels)
    channels, length = signals.shape
    if length < n_epochs * samples_per_epoch:
        raise ValueError(f"signals hold {length} samples, fewer than {n_epochs} epochs of "
                         f"{samples_per_epoch}")
    epochs = signals[:, :n_epochs * samples_per_epoch].reshape(channels, n_epochs, samples_per_epoch)
    keep = np.flatnonzero(np.asarray(labels) >= 0)
    return (np.ascontiguousarray(epochs.transpose(1, 0, 2)[keep]),
            np.asarray(labels, dtype=np.int64)[keep], keep.astype(np.int64))


def recording_epochs(recording: dict[str, Any], *, low_hz: float, high_hz: float, target_hz: float,
                     filter_order: int = 4, normalize: str = "robust", clip: float | None = 20.0,
                     epoch_seconds: float = EPOCH_SECONDS) -> dict[str, Any]:
    """One recording from :func:`read_sleep_edf_folder` -> filtered, resampled, normalised
    epochs.

    Returns:
        ``{"epochs": [E, C, epoch_seconds * target_hz] float32, "labels": [E] int64,
        "epoch_index": [E] int64}`` (dropped epochs removed).
    """
    signals = preprocess_signals(recording["signals"], sampling_rate=recording["sampling_rate"],
                                 low_hz=low_hz, high_hz=high_hz, target_hz=target_hz,
                                 filter_order=filter_order)
    signals = normalize_channels(signals, method=normalize, clip=clip)
    epochs, labels, index = epoch_signals(signals, recording["labels"],
                                          samples_per_epoch=round(epoch_seconds * target_hz))
    return {"epochs": epochs, "labels": labels, "epoch_index": index}


# ------------------------------------------------------------------------ splitting


def subject_split(subjects: Sequence[int], *, val_subjects: int, test_subjects: int, seed: int
                  ) -> dict[str, list[int]]:
    """Assign whole subjects (all their nights) to train, validation and test.

    Args:
        subjects: subject id of each recording (repeats for several nights).
        val_subjects, test_subjects: how many subjects go to validation and test.
        seed: the subject permutation comes from ``numpy.random.default_rng(seed)``.

    Returns:
        ``{"train": ids, "val": ids, "test": ids}``, each sorted, disjoint.

    Raises:
        ValueError: when fewer than ``val_subjects + test_subjects + 1`` subjects exist.
    """
    unique = np.unique(np.asarray(subjects))
    if val_subjects < 0 or test_subjects < 1:
        raise ValueError(f"need val_subjects >= 0 and test_subjects >= 1, got {val_subjects}, "
                         f"{test_subjects}")
    if len(unique) < val_subjects + test_subjects + 1:
        raise ValueError(f"{len(unique)} subject(s) cannot give {test_subjects} test, "
                         f"{val_subjects} validation and at least 1 training subject")
    order = np.random.default_rng(seed).permutation(unique)
    test, val, train = (order[:test_subjects], order[test_subjects:test_subjects + val_subjects],
                        order[test_subjects + val_subjects:])
    return {name: sorted(int(s) for s in part) for name, part in
            {"train": train, "val": val, "test": test}.items()}


# ------------------------------------------------------------------- inference input


def read_psg(path: str | Path, *, channels: Sequence[str]) -> tuple[np.ndarray, float]:
    """One PSG night without its hypnogram (the inference input): ``(signals [C, L] float32
    volts, sampling rate)`` of ``channels`` in that order.

    Raises:
        SleepEdfError: naming the file, when it is no EDF, lacks a channel or MNE cannot
            read it.
    """
    import mne

    path = Path(path)
    try:
        header = read_edf_header(path)
    except (OSError, ValueError) as error:
        raise _BadFile(path.name, str(error)) from None
    missing = [c for c in channels if c not in header.labels]
    if missing:
        raise _BadFile(path.name, f"missing channel(s) {missing}; the file has "
                                  f"{list(header.labels)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne.io.read_raw_edf(path, include=list(channels), preload=False,
                                      verbose="error")
            signals = raw.get_data(picks=list(channels))
    except Exception as error:  # MNE raises several types for broken files
        raise _BadFile(path.name, f"MNE cannot read the PSG ({error})") from None
    return signals.astype(np.float32), float(raw.info["sfreq"])


def psg_edf_bytes(signals: np.ndarray, sampling_rate: float, channels: Sequence[str]) -> bytes:
    """The bytes of an EDF file holding ``signals`` ``[C, L]`` (volts, written in uV with 1-s
    data records, as Sleep-EDF stores EEG) under the labels ``channels``: what
    :func:`read_psg` reads back (16-bit quantised). ``L`` must be a whole number of seconds."""
    import io

    import edfio

    signals = np.asarray(signals, dtype=np.float64)
    if signals.ndim != 2 or len(signals) != len(channels):
        raise ValueError(f"signals must be [{len(channels)}, L], got {list(signals.shape)}")
    edf = edfio.Edf([edfio.EdfSignal(row * 1e6, sampling_rate, label=name,
                                     physical_dimension="uV")
                     for row, name in zip(signals, channels, strict=True)])
    buffer = io.BytesIO()
    edf.write(buffer)
    return buffer.getvalue()


#: Stage index -> the hypnogram annotation text written for it (R&K 3 stands for N3).
ANNOTATION_OF_STAGE: tuple[str, ...] = ("Sleep stage W", "Sleep stage 1", "Sleep stage 2",
                                        "Sleep stage 3", "Sleep stage R")
