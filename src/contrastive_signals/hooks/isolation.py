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
"""

from __future__ import annotations

import logging
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


class RunIsolationHook(CatalogHook):
    """Pins each versioned dataset's load version to the version saved by this run."""

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        pinned = pin_load_to_saved_version(self.saved_dataset(dataset_name))
        if pinned is not None:
            logger.debug("%s: later loads in this run read version %s", dataset_name, pinned)
