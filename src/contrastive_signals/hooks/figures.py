"""Project hooks: thread settings before a run, and one readable log line of figures per node."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from kedro.framework.hooks import hook_impl

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
