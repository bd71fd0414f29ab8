"""Checkpoints for every training node: each node runs inside a checkpoint scope named after
it, so every ``fit`` call in it writes checkpoints under ``runtime.checkpoints.folder`` and a
rerun of the same command after a kill resumes them (see ``training/checkpoint.py``).

A node's checkpoints are deleted once all its outputs are saved; a node that fails or is
killed keeps them for the next run. Parameters (``conf/base/parameters_runtime.yml``)::

    runtime.checkpoints: {enabled, resume, every_epochs, every_minutes, folder}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from contrastive_signals.config import from_params, require_bool
from contrastive_signals.training.checkpoint import (
    CheckpointPolicy,
    close_scope,
    content_fingerprint,
    open_scope,
    remove_checkpoints,
)

logger = logging.getLogger(__name__)

PARAMETERS = "runtime.checkpoints"


@dataclass(frozen=True)
class CheckpointParams:
    """``runtime.checkpoints``: ``enabled`` writes checkpoints, ``resume`` reads them;
    intervals in epochs and/or minutes of training (null: not by that measure)."""

    enabled: bool = True
    resume: bool = True
    every_epochs: int | None = None
    every_minutes: float | None = 2.0
    folder: str = "data/09_checkpoints"

    def __post_init__(self) -> None:
        require_bool(self, ("enabled", "resume"))
        CheckpointPolicy(Path(self.folder), self.every_epochs, self.every_minutes)

    def policy(self, project: Path) -> CheckpointPolicy:
        return CheckpointPolicy(project / self.folder, self.every_epochs, self.every_minutes,
                                resume=self.resume)


def parse_checkpoint_params(values: dict[str, Any] | None) -> CheckpointParams:
    return from_params(CheckpointParams, values, path=PARAMETERS)


class CheckpointHook:
    """Opens a checkpoint scope around each node and removes it once the outputs are saved."""

    def __init__(self) -> None:
        self._policy: CheckpointPolicy | None = None
        self._scopes: dict[str, Any] = {}
        self._unsaved: dict[str, set[str]] = {}
        self._fingerprints: dict[str, str] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        params = parse_checkpoint_params(
            context.params.get("runtime", {}).get("checkpoints"))
        self._policy = params.policy(Path(context.project_path)) if params.enabled else None

    @hook_impl
    def before_node_run(self, node, inputs: dict[str, Any]) -> None:
        if self._policy is None:
            return
        fingerprint = content_fingerprint({name: inputs[name] for name in sorted(inputs)})
        self._scopes[node.name] = open_scope(self._policy, key=node.name,
                                             fingerprint=fingerprint)
        self._fingerprints[node.name] = fingerprint
        self._unsaved[node.name] = set(node.outputs)

    def _close(self, node) -> None:
        token = self._scopes.pop(node.name, None)
        if token is not None:
            close_scope(token)

    @hook_impl
    def after_node_run(self, node) -> None:
        self._close(node)  # Kedro saves the outputs after this hook
        if self._policy is not None and not node.outputs:
            self._remove(node.name)

    def _remove(self, name: str) -> None:
        remove_checkpoints(self._policy.folder, name, self._fingerprints.pop(name))

    @hook_impl
    def on_node_error(self, node) -> None:
        self._close(node)  # the checkpoints stay for the next run
        self._unsaved.pop(node.name, None)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node) -> None:
        unsaved = self._unsaved.get(node.name)
        if unsaved is None:
            return
        unsaved.discard(dataset_name)
        if not unsaved:
            del self._unsaved[node.name]
            self._remove(node.name)
