"""One run never reads another run's artifacts.

Kedro saves every versioned dataset of a run under the run's save version (the session id)
but, unless told otherwise, *loads* the newest version on disk. With two runs in one project,
a downstream node of the first run (an evaluation reading ``simclr.encoder``) could load the
model that the second run saved a moment later, and report its figures as its own.

The fix pins, inside the running process, the load version of each versioned dataset to the
version this run just saved. The catalog keeps one dataset object per name for the whole
run, so every later load of that name reads this run's file, whatever other runs write
meanwhile. Versions this run did not produce (``--from-nodes`` after an earlier run) still
load the newest on disk, and an explicit ``--load-versions`` is left alone.

Unversioned files (reports, histories, plots, features: every local file dataset without
``versioned: true``) are shared paths in ``data/``: the last writer wins. Two races came with
that: kedro-mlflow's artifact datasets log the file right after writing it, so a run could
log the report another run wrote in between; and a run reading back a file it saved (the
training curves read the histories) could read the other run's. So the run saves each such
file into its own temporary folder, loads it back from there and logs it to MLflow from
there, and an atomic copy is *published* to the usual ``data/`` path right after each save,
for people, kedro-viz and the next run. When runs overlap, a ``data/`` file is therefore the
last writer's whole file (never a mix); each MLflow run holds its own copy. A per-run
``data/`` folder would break "the last run's results are in data/"; versioning every file
would change every path users and kedro-viz read.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io.core import AbstractVersionedDataset, Version

from contrastive_signals.hooks.catalog import CatalogHook

logger = logging.getLogger(__name__)


def pin_load_to_saved_version(dataset: Any) -> str | None:
    """Make ``dataset`` load the version it saved last; returns that version (``None`` when
    the dataset is not versioned or its load version was pinned explicitly)."""
    if not isinstance(dataset, AbstractVersionedDataset):
        return None
    version = getattr(dataset, "_version", None)
    if version is None or version.save is None:
        return None
    if version.load is not None and version.load != version.save:
        return None  # the user asked for a given version (--load-versions)
    dataset._version = Version(version.save, version.save)
    dataset._clear_version_cache()
    return version.save


def local_file_path(dataset: Any) -> PurePosixPath | None:
    """The local path an unversioned file dataset writes; None for anything else (memory,
    versioned or remote datasets)."""
    if not isinstance(dataset, AbstractVersionedDataset) or dataset._version is not None:
        return None
    if getattr(dataset, "_protocol", "file") not in ("file", None):
        return None
    path = getattr(dataset, "_filepath", None)
    return path if isinstance(path, PurePosixPath) else None


def publish(source: Path, target: Path) -> None:
    """Copy ``source`` (a file or a folder) to ``target``; a file is renamed into place, so a
    reader never sees half of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class RunIsolationHook(CatalogHook):
    """Pins each versioned dataset's load version to the version saved by this run, and keeps
    this run's unversioned files in a private folder (published to ``data/`` after each
    save)."""

    def __init__(self) -> None:
        super().__init__()
        self._run_dir: Path | None = None
        self._published: dict[str, Path] = {}  # dataset name -> its usual data/ path

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._run_dir = Path(tempfile.mkdtemp(prefix="kedro-run-files-"))
        self._published = {}
        atexit.register(self._clean_up)  # an interrupted run leaves no folder behind

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        dataset = self.saved_dataset(dataset_name)
        path = local_file_path(dataset)
        if path is None or self._run_dir is None or dataset_name in self._published:
            return
        folder = self._run_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", dataset_name)
        folder.mkdir(parents=True, exist_ok=True)
        self._published[dataset_name] = Path(path)
        dataset.published_path = Path(path)  # the file people see, for messages
        # the same base name: MLflow logs an artifact under it
        dataset._filepath = PurePosixPath((folder / path.name).as_posix())

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        dataset = self.saved_dataset(dataset_name)
        if dataset is None:
            return
        target = self._published.get(dataset_name)
        if target is not None and Path(dataset._filepath).exists():
            publish(Path(dataset._filepath), target)
        pinned = pin_load_to_saved_version(dataset)
        if pinned is not None:
            logger.debug("%s: later loads in this run read version %s", dataset_name, pinned)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._clean_up()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._clean_up()

    def _clean_up(self) -> None:
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
