"""Helpers for sweep tests and the sweep benchmark: start `python -m
contrastive_signals.sweep` processes in a project copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.project import project_env

SWEEP = [sys.executable, "-m", "contrastive_signals.sweep"]


def start_sweep(project: Path, *args: str, log: Path, threads: int | None = 1
                ) -> subprocess.Popen:
    """One sweep process in ``project`` (its own process group), output to ``log``."""
    env = project_env(project)
    if threads is not None:  # torch and the BLAS of the probes
        env.update(dict.fromkeys(("TORCH_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                  "MKL_NUM_THREADS"), str(threads)))
    with open(log, "w") as output:
        return subprocess.Popen([*SWEEP, *args, "--project", str(project)], cwd=project,
                                env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_all(processes: list[subprocess.Popen], logs: list[Path], timeout: float = 900
             ) -> list[dict]:
    """Wait for every process; fail with its log's tail if one fails; the JSON summary each
    printed last."""
    summaries = []
    for process, log in zip(processes, logs, strict=True):
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                if other.poll() is None:
                    os.killpg(other.pid, signal.SIGKILL)
            raise
        text = log.read_text()
        if process.returncode != 0:
            raise AssertionError(f"sweep process failed ({process.returncode}):\n{text[-6000:]}")
        summaries.append(json.loads(text[text.rindex("\n{\n") + 1:]))
    return summaries


def project_study(project: Path, name: str):
    """The Optuna study ``name`` in the project's default sweep storage."""
    import optuna

    return optuna.load_study(study_name=name,
                             storage=f"sqlite:///{project}/data/10_sweeps/optuna.db")
