"""Every parameter of the pipelines being run is checked before the first node starts, and
every folder the run will write is checked for writing before anything trains.

Kedro builds the catalog (with ``--params`` overrides merged) before the run; this hook then
builds each node's typed parameter blocks through ``pipelines/parameter_checks.py`` and
raises one error listing every bad parameter by its full path. kedro-mlflow has opened the
MLflow run by then (plugins' hooks run first), so the hook ends it as FAILED.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from kedro.framework.hooks import hook_impl

from contrastive_signals.config import ParameterError
from contrastive_signals.hooks.run_status import end_active_runs
from contrastive_signals.pipelines.parameter_checks import parameter_problems

PARAMS_PREFIX = "params:"


def _parameter_blocks(pipeline, catalog) -> list[tuple[str, Any]]:
    keys = sorted({name for node in pipeline.nodes for name in node.inputs
                   if name.startswith(PARAMS_PREFIX)})
    return [(key.removeprefix(PARAMS_PREFIX), catalog.load(key)) for key in keys]


def _device_problems(blocks: list[tuple[str, Any]]) -> list[str]:
    """``fit.device: cuda`` (anywhere in a block) on a machine without CUDA, by full path."""
    if torch.cuda.is_available():
        return []
    problems = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}.{key}")
        elif path.endswith(".device") and isinstance(value, str) and value.startswith("cuda"):
            problems.append(f"{path} is '{value}' but CUDA is not available on this machine; "
                            "use 'auto' (CUDA when present, else the CPU) or 'cpu'")

    for key, values in blocks:
        visit(values, key)
    return problems


def output_folders(pipeline, catalog) -> list[Path]:
    """The local folders the pipeline's outputs are written to (a versioned dataset's own
    folder included)."""
    folders = set()
    for name in pipeline.all_outputs():
        dataset = catalog.get(name)
        filepath = getattr(dataset, "_filepath", None)
        if filepath is None or getattr(dataset, "_protocol", "file") not in ("file", None):
            continue
        path = Path(str(filepath))
        versioned = getattr(dataset, "_version", None) is not None
        folders.add(path if versioned else path.parent)
    return sorted(folders)


def unwritable(folders: list[Path]) -> list[str]:
    """A message for each folder that cannot be created or written to (tried for real: the
    folder is created and a temporary file written and removed in it)."""
    problems = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check"):
                pass
        except OSError as error:
            problems.append(f"{folder}: not writable ({error.strerror or error}); free it, "
                            "fix its permissions or change its filepath in conf/")
    return problems


class ParameterCheckHook:
    """Fails the run before its first node on any bad parameter or unwritable output folder."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        blocks = _parameter_blocks(pipeline, catalog)
        problems = parameter_problems(blocks) + _device_problems(blocks)
        problems += unwritable(output_folders(pipeline, catalog))
        if not problems:
            return
        end_active_runs("FAILED", failure="parameter check")
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise ParameterError(f"{len(problems)} problem(s) found before any node ran:\n{listed}")
