"""A run started by an orchestrator (one Airflow task = one Kedro session on a slice of the
pipeline) joins the orchestrator's MLflow picture.

kedro-mlflow opens one MLflow run per session, named after the pipeline. When the environment
names a parent run (``CONTRASTIVE_SIGNALS_PARENT_RUN_ID``, set by
``contrastive_signals.airflow_tasks`` for the session of each task), this hook makes that run
a child of it (MLflow's ``mlflow.parentRunId`` tag: the UI nests it), renames it
(``CONTRASTIVE_SIGNALS_RUN_NAME``, e.g. the task id) and adds the tags of
``CONTRASTIVE_SIGNALS_RUN_TAGS`` (a JSON object, e.g. the DAG run id and the task id).
Without these variables (a plain ``kedro run``) it does nothing.

When ``CONTRASTIVE_SIGNALS_SAVED_VERSIONS_FILE`` names a file, a successful run writes into
it (JSON) the save version of each versioned dataset it saved, ``{dataset: version}``: the
orchestrator hands them to the downstream tasks as their load versions.

Environment variables rather than arguments: the same slice can be run by any orchestrator
as ``kedro run --namespaces=...`` with the variables set.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io.core import AbstractVersionedDataset

from contrastive_signals.hooks.catalog import CatalogHook

logger = logging.getLogger(__name__)

PARENT_RUN_ENV = "CONTRASTIVE_SIGNALS_PARENT_RUN_ID"
RUN_NAME_ENV = "CONTRASTIVE_SIGNALS_RUN_NAME"
RUN_TAGS_ENV = "CONTRASTIVE_SIGNALS_RUN_TAGS"
SAVED_VERSIONS_ENV = "CONTRASTIVE_SIGNALS_SAVED_VERSIONS_FILE"
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"


def orchestrated_run_tags(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The MLflow tags that the variables of ``environ`` ask for (empty when none is set)."""
    tags: dict[str, str] = {}
    raw = environ.get(RUN_TAGS_ENV)
    if raw:
        values = json.loads(raw)
        if not isinstance(values, dict):
            raise ValueError(f"{RUN_TAGS_ENV} must be a JSON object, got {raw!r}")
        tags.update({str(k): str(v) for k, v in values.items()})
    if environ.get(PARENT_RUN_ENV):
        tags[PARENT_TAG] = environ[PARENT_RUN_ENV]
    if environ.get(RUN_NAME_ENV):
        tags[RUN_NAME_TAG] = environ[RUN_NAME_ENV]
    return tags


def saved_version(dataset) -> str | None:
    """The version ``dataset`` saved under (``None`` when it is not versioned)."""
    if not isinstance(dataset, AbstractVersionedDataset):
        return None
    version = getattr(dataset, "_version", None)
    return None if version is None else version.save


class OrchestratedRunHook(CatalogHook):
    """Nests kedro-mlflow's run under the orchestrator's parent run and tags it; records the
    versions the run saved."""

    def __init__(self) -> None:
        super().__init__()
        self._saved: dict[str, str] = {}

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        version = saved_version(self.saved_dataset(dataset_name))
        if version is not None:
            self._saved[dataset_name] = version

    @hook_impl
    def after_pipeline_run(self) -> None:
        target = os.environ.get(SAVED_VERSIONS_ENV)
        if target:
            Path(target).write_text(json.dumps(self._saved, sort_keys=True))

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._saved = {}
        # kedro-mlflow (a plugin, registered after the project's hooks, so called first) has
        # opened the session's run by now
        tags = orchestrated_run_tags(os.environ)
        run = mlflow.active_run()
        if not tags or run is None:
            return
        mlflow.set_tags(tags)
        logger.info("MLflow run %s is a child of run %s", run.info.run_id,
                    tags.get(PARENT_TAG, "-"))
