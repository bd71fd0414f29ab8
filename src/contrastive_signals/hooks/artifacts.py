"""Every file a run logs to MLflow, logged from this run's own copy, and a failure to log that
never loses what was trained.

``ModelArtifactsHook`` logs

- every versioned model file (``TorchDataset``) under ``models/<dataset name>/`` (kedro-mlflow's
  artifact wrapper cannot wrap versioned datasets created from dataset factories: their save
  versions would disagree), and
- the files of kedro-mlflow's ``MlflowArtifactDataset`` entries (reports, histories, plots),
  whose own logging it switches off: it logs the file this run just wrote (the run's private
  copy, see ``hooks/isolation.py``), and it can report a failure well.

Kedro saves a node's outputs first, then calls this hook, so a trained model is already on disk
when MLflow refuses it. The failure is raised when the next node starts (or when the pipeline
ends), not in the middle of the node's saves: every output of the node is saved, Kedro counts
the node as done (it suggests resuming after it, not "No nodes ran"), and the message names
every file that is saved but not in MLflow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from mlflow.tracking import MlflowClient

from contrastive_signals.hooks.catalog import CatalogHook
from contrastive_signals.hooks.run_status import end_active_runs
from contrastive_signals.io.torch_dataset import TorchDataset

logger = logging.getLogger(__name__)


class ArtifactsNotLoggedError(RuntimeError):
    """MLflow refused files that are saved locally."""


def _is_mlflow_artifact_dataset(dataset: Any) -> bool:
    return hasattr(dataset, "_logging_activated") and hasattr(dataset, "artifact_path")


class ModelArtifactsHook(CatalogHook):
    """Logs model files and kedro-mlflow artifact files to the active MLflow run; a logging
    failure names the saved files and stops the run before the next node."""

    def __init__(self) -> None:
        super().__init__()
        self._failure: str | None = None
        self._not_logged: list[str] = []

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        super().after_catalog_created(catalog)
        self._failure, self._not_logged = None, []

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        dataset = self.saved_dataset(dataset_name)
        if _is_mlflow_artifact_dataset(dataset) and dataset._logging_activated:
            dataset._logging_activated = False
            dataset._logged_by_hook = True

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        dataset = self.saved_dataset(dataset_name)
        if isinstance(dataset, TorchDataset) and dataset.last_saved_path is not None \
                and getattr(dataset, "_version", None) is not None:
            self._log(dataset.last_saved_path, f"models/{dataset_name}", None,
                      f"model {dataset_name}")
        elif getattr(dataset, "_logged_by_hook", False):
            shown = getattr(dataset, "published_path", None)
            self._log(Path(dataset._filepath), dataset.artifact_path, dataset.run_id, dataset_name,
                      shown)

    def _log(self, path: Path, artifact_path: str | None, run_id: str | None, what: str,
             shown: Path | None = None) -> None:
        """Log ``path``; on failure remember it (and log the error now) instead of raising.
        ``shown``: the path to name in messages (the published copy), default ``path``."""
        if run_id is None and mlflow.active_run() is None:
            return
        shown = _shown_path(shown or path)
        if self._failure is None:
            try:
                if run_id:
                    MlflowClient().log_artifact(run_id, str(path), artifact_path)
                else:
                    mlflow.log_artifact(str(path), artifact_path=artifact_path)
                return
            except Exception as error:  # any store error: the file must not be lost
                self._failure = f"{type(error).__name__}: {error}"
        self._not_logged.append(f"{what} at {shown}")
        logger.error("MLflow could not store %s (%s); it is saved at %s", what, self._failure, shown)

    @hook_impl
    def before_node_run(self) -> None:
        self._raise_if_failed()

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        if self._failure is not None:
            end_active_runs("FAILED", failure="MLflow artifact logging failed")
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._failure is None:
            return
        saved = "; ".join(self._not_logged)
        failure, self._failure, self._not_logged = self._failure, None, []
        raise ArtifactsNotLoggedError(
            f"Logging to MLflow failed ({failure}). Saved locally, not in MLflow: {saved}. "
            f"Fix the MLflow artifact store, then resume with Kedro's --from-nodes suggestion "
            f"above (or log the files by hand).")


def _shown_path(path: Path) -> str:
    """The path relative to the working directory (the project) when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
