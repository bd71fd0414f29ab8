"""Pieces the benchmark scripts share: the machine a figure was measured on, and the wall time
of a whole `kedro run --pipeline=<name>` in a throwaway project copy.

Benchmarks on a shared machine record the load average beside their seconds: other processes
inflate wall times, and a figure without its load cannot be compared with another."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_STAMP = re.compile(r"^\[(\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\]")
_NODE = re.compile(r"(Running|Completed) node:\s*([A-Za-z0-9_.]+)")


def machine_info(*packages: str) -> dict[str, object]:
    """``machine.*`` entries: platform, the CPU model and the vector instructions torch's
    kernels use (what decides the rounding: training figures move between CPUs), CPUs,
    Python, torch threads and the versions of numpy, scipy, scikit-learn and of ``packages``
    (distribution names, e.g. ``"pywavelets"``)."""
    import torch

    from contrastive_signals.training.device import available_cores
    from tests.e2e.golden import machine_fingerprint

    fingerprint = machine_fingerprint()
    info: dict[str, object] = {
        "machine.platform": platform.platform(),
        "machine.processor": platform.processor() or platform.machine(),
        "machine.cpu": fingerprint["cpu"],
        "machine.cpu_capability": fingerprint["cpu_capability"],
        "machine.cpu_count": os.cpu_count(),
        "machine.usable_cpus": available_cores(),
        "machine.python": platform.python_version(),
        "machine.torch": torch.__version__,
        "machine.torch_threads": torch.get_num_threads(),
    }
    for package in dict.fromkeys(("numpy", "scipy", "scikit-learn", *packages)):
        try:
            info[f"machine.{package}"] = version(package)
        except PackageNotFoundError:
            info[f"machine.{package}"] = None
    return info


def node_seconds(log: str, prefix: str) -> dict[str, float]:
    """``{"<prefix>.node.<name>_s": seconds}`` from Kedro's log lines ``[stamp] INFO Running
    node: <name>`` and ``Completed node: <name>`` of a sequential run (a blank stamp column
    repeats the previous stamp, so a node's seconds are whole-second resolution). Kedro 1.x
    names the node without its namespace when it starts and with it when it completes, so a
    completion closes the node that started last. ``<name>`` is the completed one's, less a
    leading ``<prefix>.`` namespace."""
    stamp, started, seconds = None, None, {}
    for line in log.splitlines():
        match = _STAMP.match(line)
        if match:
            stamp = datetime.strptime(match.group(1), "%m/%d/%y %H:%M:%S")
        node = _NODE.search(line)
        if node is None or stamp is None:
            continue
        kind, name = node.groups()
        if kind == "Running":
            started = stamp
        elif started is not None:
            name = name.removeprefix(f"{prefix}.")
            seconds[f"{prefix}.node.{name}_s"] = (stamp - started).total_seconds()
            started = None
    return seconds


@dataclass(frozen=True)
class PipelineRun:
    """One timed `kedro run`: wall seconds, the combined log, the flat metrics report it
    wrote, and the 1-minute load average before and after (plus 5 and 15 minutes after)."""

    wall_s: float
    log: str
    metrics: dict[str, float]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def load_figures(self) -> dict[str, float]:
        return {"loadavg.before_1min": self.load_before[0], "loadavg.after_1min": self.load_after[0],
                "loadavg.after_5min": self.load_after[1], "loadavg.after_15min": self.load_after[2]}


def time_pipeline_run(pipeline: str, report: str, env: str | None = None,
                      extra_args: tuple[str, ...] = ()) -> PipelineRun:
    """Run ``kedro run --pipeline=<pipeline> <extra_args>`` in a fresh project copy (empty
    data/, its own MLflow store; ``env`` names a Kedro environment, default base+local) and
    read the flat report at ``report`` (a path relative to the project). Raises SystemExit
    with the log's tail when the run fails."""
    from tests.e2e.project import KEDRO, make_project_copy, project_env

    with tempfile.TemporaryDirectory() as folder:
        project = make_project_copy(Path(folder))
        command = [str(KEDRO), "run", f"--pipeline={pipeline}", *extra_args] + (
            [f"--env={env}"] if env else [])
        before = os.getloadavg()
        start = time.perf_counter()
        result = subprocess.run(command, cwd=project, env={**project_env(project), "COLUMNS": "200"},
                                capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = os.getloadavg()
        if result.returncode != 0:
            raise SystemExit(f"kedro run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        metrics = json.loads((project / report).read_text())
    return PipelineRun(round(wall, 1), result.stdout + result.stderr, metrics, before, after)


def project_context(project: Path, env: str | None = None):
    """A loaded Kedro context of the project copy ``project`` (environment ``env``, default
    base+local), with the working directory moved there: the catalog's paths are relative."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.chdir(project)
    bootstrap_project(project)
    return KedroSession.create(project_path=project, env=env).load_context()


def sleep_epochs_of(context) -> dict:
    """The `wav2vec` pipeline's epochs dataset, built from ``context``'s Sleep-EDF nights as
    its ``build_epochs`` node builds it."""
    from contrastive_signals.pipelines.sleep.nodes import build_sleep_epochs

    catalog = context.catalog
    return build_sleep_epochs(catalog.load("wav2vec.edf_recordings"),
                              catalog.load("wav2vec.synthetic_edf"),
                              context.params["wav2vec"]["ingestion"])


def write_figures(figures: dict[str, object], out: Path, *, echo: bool = True) -> None:
    """The flat JSON object of a benchmark (written to a temporary file, then renamed: a
    killed run never leaves half a file), also printed when ``echo``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2) + "\n"
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text)
    os.replace(partial, out)
    if echo:
        print(text, end="")
