"""Project hooks: thread settings before a run, and one readable log line of figures per node."""

from __future__ import annotations

import logging
import os
from typing import Any

import mlflow
import torch
from kedro.framework.hooks import hook_impl

from contrastive_signals.hooks.catalog import CatalogHook
from contrastive_signals.io.torch_dataset import TorchDataset

logger = logging.getLogger(__name__)


class TorchThreadsHook:
    """Uses every core for intra-op parallelism unless ``TORCH_NUM_THREADS`` says otherwise."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        threads = os.environ.get("TORCH_NUM_THREADS")
        if threads:
            torch.set_num_threads(int(threads))


def _figures(value: Any) -> dict[str, float]:
    """The numeric figures a node returned: flat metric dicts, ``{"metrics": {...}}`` results,
    and the last value of each per-epoch history."""
    if not isinstance(value, dict):
        return {}
    if isinstance(value.get("metrics"), dict):
        value = value["metrics"]
    figures = {}
    for key, item in value.items():
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            figures[key] = float(item)
        elif isinstance(item, list) and item and isinstance(item[-1], (int, float)):
            figures[f"{key}[last]"] = float(item[-1])
    return figures


class NodeFiguresHook:
    """Logs ``node: name=value ...`` once a node returns figures, so the terminal shows each
    stage's result in one line."""

    @hook_impl
    def after_node_run(self, node, outputs: dict[str, Any]) -> None:
        parts = []
        for dataset, value in outputs.items():
            if dataset.endswith("_mlflow") or dataset.endswith("history_metrics"):
                continue
            parts += [f"{k}={v:.4g}" for k, v in _figures(value).items()]
        if parts:
            logger.info("%s: %s", node.name, " ".join(parts[:24]))


class ModelArtifactsHook(CatalogHook):
    """Logs every versioned model file the catalog saves to the active MLflow run, under
    ``models/<dataset name>/`` (kedro-mlflow's artifact wrapper cannot wrap versioned
    datasets created from dataset factories: their save versions would disagree)."""

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if mlflow.active_run() is None:
            return
        dataset = self.saved_dataset(dataset_name)
        if isinstance(dataset, TorchDataset) and dataset.last_saved_path is not None \
                and getattr(dataset, "_version", None) is not None:
            try:
                mlflow.log_artifact(str(dataset.last_saved_path),
                                    artifact_path=f"models/{dataset_name}")
            except Exception as error:  # the model is safe on disk: say where
                raise RuntimeError(
                    f"{dataset_name}: the trained model is saved at {dataset.last_saved_path}, "
                    f"but logging it to MLflow failed: {error}") from error
