"""Helpers for end-to-end tests: a throwaway copy of the project to run `kedro` in."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEDRO = Path(sys.executable).with_name("kedro")


def make_project_copy(destination: Path) -> Path:
    """Copy what `kedro run` needs (pyproject, conf) into ``destination``; the package itself
    is imported from the installed (editable) distribution, and data/ starts empty."""
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, destination / name)
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf",
                    ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir()
    (destination / "src").mkdir()
    return destination


def project_after_run(destination: Path, *run_args: str) -> Path:
    """A project copy in ``destination`` after ``kedro run <run_args>`` (which must succeed)."""
    project = make_project_copy(destination)
    kedro(project, "run", *run_args)
    return project


def project_env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "KEDRO_DISABLE_TELEMETRY": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "TQDM_DISABLE": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    })
    return env


def kedro(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the `kedro` CLI in ``project``; fail with its output if it exits non-zero."""
    result = subprocess.run([str(KEDRO), *args], cwd=project, env=project_env(project),
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"kedro {' '.join(args)} failed:\n{result.stdout[-4000:]}\n"
                             f"{result.stderr[-6000:]}")
    return result


def start_kedro(project: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start the `kedro` CLI in ``project`` in its own process group (so that a signal reaches
    every child), writing its output to ``log``."""
    with open(log, "w") as output:
        return subprocess.Popen([str(KEDRO), *args], cwd=project, env=project_env(project),
                                stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def signal_when(process: subprocess.Popen, folder: Path, pattern: str, signal_number: int,
                timeout: float = 300) -> Path:
    """Send ``signal_number`` to ``process``'s group once a file matching ``pattern`` exists
    under ``folder`` (returned); fail if the process ends first or none appears."""
    deadline = time.monotonic() + timeout
    path = folder / pattern
    while not (found := next(iter(sorted(folder.glob(pattern))), None)):
        if process.poll() is not None:
            raise AssertionError(f"kedro ended (code {process.returncode}) before {path} existed")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)
    os.killpg(process.pid, signal_number)
    process.wait(timeout=120)
    return found
