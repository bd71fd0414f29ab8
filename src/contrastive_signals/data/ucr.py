"""UCR/UEA classification archives in their own layout (``<Name>/<Name>_TRAIN.ts`` / ``_TEST.ts``,
or ``.arff``), read offline.

Two roots are searched: a user folder (e.g. ``data/01_raw/ucr``) and the folder of datasets that
ships inside aeon (``aeon/datasets/data``; read from disk, aeon's fetcher is never called). The
parsing is aeon's own ``load_from_ts_file`` / ``load_from_arff_file`` (local files only), after a
strict check of the ``.ts`` header that aeon skips; every error names the file.

Series of unequal length are right-padded with zeros and come with a validity mask; nothing is
truncated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contrastive_signals.data.bad_files import BadFilesError, read_each

TS_BOOLEAN_TAGS = {"timestamps", "missing", "univariate", "equallength", "targetlabel"}
TS_TAGS = TS_BOOLEAN_TAGS | {"problemname", "classlabel", "dimensions", "serieslength", "data"}
SPLITS = ("TRAIN", "TEST")
SUFFIXES = (".ts", ".arff")
STANDARDISE_MODES = (True, False, "auto")

# Univariate sets of the 2018 UCR archive stored without per-series z-normalisation (the list
# TS2Vec's loader scales); every other univariate set is stored z-normalised per series.
UNNORMALISED_UNIVARIATE = frozenset({
    "AllGestureWiimoteX", "AllGestureWiimoteY", "AllGestureWiimoteZ", "BME", "Chinatown",
    "Crop", "EOGHorizontalSignal", "EOGVerticalSignal", "Fungi", "GestureMidAirD1",
    "GestureMidAirD2", "GestureMidAirD3", "GesturePebbleZ1", "GesturePebbleZ2",
    "GunPointAgeSpan", "GunPointMaleVersusFemale", "GunPointOldVersusYoung", "HouseTwenty",
    "InsectEPGRegularTrain", "InsectEPGSmallTrain", "MelbournePedestrian",
    "PickupGestureWiimoteZ", "PigAirwayPressure", "PigArtPressure", "PigCVP", "PLAID",
    "PowerCons", "Rock", "SemgHandGenderCh2", "SemgHandMovementCh2", "SemgHandSubjectCh2",
    "ShakeGestureWiimoteZ", "SmoothSubspace", "UMD",
})


def check_standardise_mode(standardise: bool | str) -> None:
    """Raise ``ValueError`` unless ``standardise`` is ``True``, ``False`` or ``"auto"``."""
    if standardise not in STANDARDISE_MODES or not isinstance(standardise, (bool, str)):
        raise ValueError(f"standardise must be true, false or 'auto', got {standardise!r}")


def should_standardise(name: str, channels: int, standardise: bool | str) -> bool:
    """Whether to z-score dataset ``name`` with ``channels`` channels: ``True``/``False`` as
    given; ``"auto"`` as TS2Vec's loaders: every multivariate (UEA) set, and the univariate sets
    the archive stores unnormalised (:data:`UNNORMALISED_UNIVARIATE`); the others as stored."""
    check_standardise_mode(standardise)
    if standardise == "auto":
        return channels > 1 or name in UNNORMALISED_UNIVARIATE
    return bool(standardise)


class UcrFormatError(ValueError):
    """A UCR/UEA file is malformed; the message names the file and the problem."""


class UcrFilesError(BadFilesError, UcrFormatError):
    """One or more UCR/UEA files are malformed; the message names every one."""

    kind = "UCR/UEA"


def regression_error(path: Path | str, why: str) -> UcrFormatError:
    """The error for a regression set (real-valued targets), which no method here supports."""
    return UcrFormatError(f"{path}: a regression dataset ({why}); regression datasets are not "
                          "supported, only classification sets (@classLabel true <classes>)")


@dataclass(frozen=True)
class RawSplit:
    """One split as read: ``series`` a list of ``[C, T_i]`` float arrays, ``labels`` ``[N]`` str
    (None for a file without labels, read with ``require_labels=False``)."""

    series: list[np.ndarray]
    labels: np.ndarray | None
    path: str


def bundled_ucr_root() -> Path:
    """The folder of UCR/UEA sets shipped inside the installed aeon package."""
    import aeon.datasets  # local import: aeon is heavy and only needed for the bundled sets

    return Path(aeon.datasets.__file__).parent / "data"


def _split_path(folder: Path, name: str, split: str) -> Path | None:
    for suffix in SUFFIXES:
        path = folder / name / f"{name}_{split}{suffix}"
        if path.is_file():
            return path
    return None


def available_datasets(roots: Sequence[Path | str]) -> dict[str, tuple[Path, Path]]:
    """``{name: (train file, test file)}`` for every ``<root>/<Name>/<Name>_TRAIN|TEST.(ts|arff)``
    pair; an earlier root wins over a later one for the same name (user data over bundled)."""
    found: dict[str, tuple[Path, Path]] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            name = folder.name
            train, test = _split_path(root, name, "TRAIN"), _split_path(root, name, "TEST")
            if name not in found and train is not None and test is not None:
                found[name] = (train, test)
    return found


def check_ts_header(path: Path | str, *, require_labels: bool = True) -> dict[str, str]:
    """Read the header of a ``.ts`` file strictly: every line before ``@data`` is a comment
    (``#``, or ``%`` as in aeon's bundled UnitTest set), blank, or a known ``@tag value``;
    booleans are ``true``/``false``; ``@classLabel true`` lists the classes; ``@data`` is
    present. ``require_labels=False`` also accepts
    ``@classLabel false`` (new series without labels, for inference).

    Returns:
        ``{tag (lower case): value text}``.

    Raises:
        UcrFormatError: naming the file and line.
    """
    tags: dict[str, str] = {}
    with open(path, encoding="utf-8") as file:
        for number, raw in enumerate(file, start=1):
            line = re.sub(r"\s+", " ", raw.strip())
            if not line or line.startswith(("#", "%")):
                continue
            if not line.startswith("@"):
                raise UcrFormatError(f"{path}, line {number}: expected a header tag (@...) or "
                                     f"@data before the data, got '{line[:60]}'")
            tag, _, value = line[1:].partition(" ")
            tag = tag.lower()
            if tag not in TS_TAGS:
                raise UcrFormatError(f"{path}, line {number}: unknown header tag '@{tag}'; "
                                     f"known tags are {sorted(TS_TAGS)}")
            if tag == "data":
                if value:
                    raise UcrFormatError(f"{path}, line {number}: @data takes no value")
                tags["data"] = ""
                break
            if tag in TS_BOOLEAN_TAGS and value.lower() not in ("true", "false"):
                raise UcrFormatError(f"{path}, line {number}: @{tag} must be true or false, "
                                     f"got '{value}'")
            if tag == "classlabel":
                words = value.split(" ")
                if words[0].lower() not in ("true", "false"):
                    raise UcrFormatError(f"{path}, line {number}: @classLabel must start with "
                                         f"true or false, got '{value}'")
                if words[0].lower() == "true" and len(words) < 2:
                    raise UcrFormatError(f"{path}, line {number}: @classLabel true must list "
                                         "the class values")
            tags[tag] = value
    if "data" not in tags:
        raise UcrFormatError(f"{path}: no @data line; the header is incomplete")
    if tags.get("targetlabel", "false").lower() == "true":
        raise regression_error(path, "@targetLabel true: one real-valued target per series")
    if require_labels and not declares_labels(tags):
        raise regression_error(path, "@classLabel false: no classes")
    return tags


def declares_labels(tags: dict[str, str]) -> bool:
    """Whether a ``.ts`` header (:func:`check_ts_header`) says each series ends in a label."""
    return tags.get("classlabel", "true").split(" ")[0].lower() == "true"


def _check_series(series: list[np.ndarray], labels: np.ndarray | None, path: Path) -> None:
    """Equal channel counts, no NaN, at least one timestep, one label per series (unless
    ``labels`` is None)."""
    if not series:
        raise UcrFormatError(f"{path}: no series after @data")
    if labels is not None and len(labels) != len(series):
        raise UcrFormatError(f"{path}: {len(series)} series but {len(labels)} labels")
    channels = series[0].shape[0]
    for i, s in enumerate(series):
        if s.ndim != 2 or s.shape[0] != channels:
            raise UcrFormatError(f"{path}: series {i + 1} has {s.shape[0]} channels but the "
                                 f"first has {channels}; all series need the same channel count")
        if s.shape[1] == 0:
            raise UcrFormatError(f"{path}: series {i + 1} is empty")
        if not np.all(np.isfinite(s)):
            raise UcrFormatError(f"{path}: series {i + 1} holds NaN or missing ('?') values; "
                                 "impute or drop them before training")


def _real_valued(labels: np.ndarray) -> bool:
    """Whether every label is a number and some are not whole numbers (regression targets)."""
    try:
        values = labels.astype(np.float64)
    except ValueError:
        return False
    return bool(np.isfinite(values).all() and (values != np.round(values)).any())


def read_ucr_file(path: Path | str, *, require_labels: bool = True) -> RawSplit:
    """Read one ``.ts`` or ``.arff`` file of a classification set; ``require_labels=False``
    also reads a ``.ts`` file of new series without labels (``@classLabel false``; ``labels``
    None).

    Raises:
        UcrFormatError: malformed header or data, unequal channel counts, NaN/missing values,
            labels outside the header's class list, a regression set (``@targetLabel true``,
            ``@classLabel false`` or real-valued labels); the message names the file.
    """
    from aeon.datasets import load_from_arff_file, load_from_ts_file  # local files only

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    tags = check_ts_header(path, require_labels=require_labels) if path.suffix == ".ts" else {}
    reader = load_from_ts_file if path.suffix == ".ts" else load_from_arff_file
    try:
        data, labels = reader(str(path))
    except (OSError, ValueError, IndexError) as error:
        raise UcrFormatError(f"{path}: could not parse the data: {error}") from error
    series = [np.asarray(s, dtype=np.float64) for s in data]
    if path.suffix == ".ts" and not declares_labels(tags):
        _check_series(series, None, path)
        return RawSplit(series=series, labels=None, path=str(path))
    labels = np.asarray([str(v).strip() for v in labels])
    _check_series(series, labels, path)
    declared = tags.get("classlabel", "").split(" ")[1:]
    if not declared and _real_valued(labels):
        raise regression_error(path, f"labels such as {labels[0]} are real numbers, not classes")
    if declared:
        unknown = sorted(set(labels) - {c.lower() for c in declared} - set(declared))
        if unknown:
            raise UcrFormatError(f"{path}: labels {unknown[:5]} are not in the header's "
                                 f"@classLabel list {declared}")
    return RawSplit(series=series, labels=labels, path=str(path))


def pad_series(series: Sequence[np.ndarray], length: int | None = None) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Stack ``[C, T_i]`` series into ``x`` ``[N, T, C]`` (zeros after each end) and a mask
    ``[N, T]`` (True on observed steps), ``T = max T_i`` unless a longer ``length`` is given.

    Raises:
        ValueError: when ``length`` is shorter than a series (no silent truncation).
    """
    longest = max(s.shape[1] for s in series)
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"length {length} is shorter than the longest series ({longest}); "
                         "series are never truncated")
    channels = series[0].shape[0]
    x = np.zeros((len(series), length, channels), dtype=np.float32)
    mask = np.zeros((len(series), length), dtype=bool)
    for i, s in enumerate(series):
        x[i, : s.shape[1]] = s.T
        mask[i, : s.shape[1]] = True
    return x, mask


def channel_statistics(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std ``([C], [C])`` float64 of the observed steps of ``x``
    ``[N, T, C]`` (mask ``[N, T]``); a zero std becomes 1."""
    # In float64, then rounded once, as TS2Vec's loaders (scikit-learn's StandardScaler) do.
    observed = x[mask].astype(np.float64)  # [n_steps, C]
    mean, std = observed.mean(0), observed.std(0)
    return mean, np.where(std > 0, std, 1.0)


def apply_channel_statistics(x: np.ndarray, mask: np.ndarray, mean: np.ndarray,
                             std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` on the observed steps of ``x`` ``[N, T, C]``, padded steps 0 ->
    float32."""
    return np.where(mask[..., None], (x.astype(np.float64) - mean) / std, 0.0).astype(np.float32)


def encode_labels(train: np.ndarray, test: np.ndarray, *, path: str) -> tuple[np.ndarray,
                                                                             np.ndarray,
                                                                             list[str]]:
    """Integer codes for string labels (classes sorted, numerically when all are numbers).

    Raises:
        UcrFormatError: when the test split has a class the training split lacks.
    """
    classes = sorted(set(train.tolist()))
    try:
        classes = sorted(classes, key=float)
    except ValueError:
        pass
    unseen = sorted(set(test.tolist()) - set(classes))
    if unseen:
        raise UcrFormatError(f"{path}: test labels {unseen[:5]} never occur in training")
    index = {c: i for i, c in enumerate(classes)}
    return (np.array([index[c] for c in train], dtype=np.int64),
            np.array([index[c] for c in test], dtype=np.int64), classes)


def load_ucr_dataset(name: str, files: dict[str, tuple[Path, Path]], *,
                     standardise: bool | str = True) -> dict[str, np.ndarray | list[str] | str]:
    """Read dataset ``name`` from ``files`` (see :func:`available_datasets`) into arrays,
    z-scored per channel with the training statistics when :func:`should_standardise` says so
    (``standardise``: ``True``, ``False`` or ``"auto"``).

    Returns:
        ``{"x_train" [N, T, C] float32, "mask_train" [N, T] bool, "y_train" [N] int64,
        "x_test", "mask_test", "y_test", "classes": [str], "train_path", "test_path",
        "standardisation": {"mean": [C], "std": [C]} float64 (None when not z-scored)}``;
        train and test are padded to one common length.

    Raises:
        KeyError: for an unknown name, listing the known ones.
        UcrFormatError: for malformed files (see :func:`read_ucr_file`; a
            :class:`UcrFilesError` naming both when both are bad).
    """
    if name not in files:
        raise KeyError(f"unknown UCR/UEA dataset '{name}'; known datasets: {sorted(files)}")
    check_standardise_mode(standardise)  # fails before any file is read
    train_path, test_path = files[name]
    train, test = read_each([(str(train_path), train_path), (str(test_path), test_path)],
                            read_ucr_file, error=UcrFilesError)
    if train.series[0].shape[0] != test.series[0].shape[0]:
        raise UcrFormatError(f"{test_path}: {test.series[0].shape[0]} channels but "
                             f"{train_path} has {train.series[0].shape[0]}")
    length = max(s.shape[1] for s in train.series + test.series)
    x_train, mask_train = pad_series(train.series, length)
    x_test, mask_test = pad_series(test.series, length)
    statistics = None
    if should_standardise(name, x_train.shape[2], standardise):
        mean, std = channel_statistics(x_train, mask_train)
        statistics = {"mean": mean, "std": std}
        x_train, x_test = (apply_channel_statistics(x, m, mean, std)
                           for x, m in ((x_train, mask_train), (x_test, mask_test)))
    y_train, y_test, classes = encode_labels(train.labels, test.labels, path=str(test_path))
    return {"x_train": x_train, "mask_train": mask_train, "y_train": y_train,
            "x_test": x_test, "mask_test": mask_test, "y_test": y_test, "classes": classes,
            "train_path": str(train_path), "test_path": str(test_path),
            "standardisation": statistics}


def load_named(archive: Mapping[str, Callable[..., dict[str, Any]]], names: Sequence[str], *,
               standardise: bool | str) -> dict[str, dict[str, Any]]:
    """``{name: load(standardise=...)}`` for each of ``names`` from an archive of loaders
    (``UcrArchiveDataset``'s ``{name: loader}``, see :func:`load_ucr_dataset`).

    Raises:
        KeyError: for names the archive lacks, listing the known names.
        UcrFilesError: after every set was tried, naming every bad file of every set.
    """
    unknown = [name for name in names if name not in archive]
    if unknown:
        raise KeyError(f"unknown UCR/UEA dataset(s) {unknown}; known datasets: {sorted(archive)} "
                       "(place others under data/01_raw/ucr/<Name>/)")
    check_standardise_mode(standardise)
    loaded = read_each([(name, name) for name in names],
                       lambda name: archive[name](standardise=standardise),
                       error=UcrFilesError, catch=(UcrFormatError, OSError))
    return dict(zip(names, loaded, strict=True))
