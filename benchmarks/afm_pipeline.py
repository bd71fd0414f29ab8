"""Wall time of the whole `kedro run --pipeline=afm` (issue 7's target: under 10 minutes
on 2 cores) and of its stages, in a throwaway copy of the project (empty data/, its own
MLflow store), with the default parameters unless ``--env`` names another environment.

Per-node seconds come from Kedro's "Running node" / "Completed node" log lines; the load
average before and after is recorded because other processes inflate wall times on a shared
machine. Writes a flat JSON object::

    afm.wall_s, afm.node.<node name>_s, afm.metrics.<name>, loadavg.before/after,
    machine.*

    python benchmarks/afm_pipeline.py --out benchmarks/results/afm_pipeline.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.project import KEDRO, make_project_copy, project_env  # noqa: E402

_STAMP = re.compile(r"^\[(\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\]")
_NODE = re.compile(r"(Running|Completed) node:\s*([A-Za-z0-9_]+)")


def node_seconds(log: str) -> dict[str, float]:
    """Seconds per node from Kedro's log lines ``[stamp] INFO Running node: <name>: ...`` and
    ``Completed node: <name>`` (a blank stamp column repeats the previous stamp)."""
    stamp, started, seconds = None, {}, {}
    for line in log.splitlines():
        match = _STAMP.match(line)
        if match:
            stamp = datetime.strptime(match.group(1), "%m/%d/%y %H:%M:%S")
        node = _NODE.search(line)
        if node is None or stamp is None:
            continue
        kind, name = node.groups()
        if kind == "Running":
            started[name] = stamp
        elif name in started:
            seconds[f"afm.node.{name}_s"] = (stamp - started[name]).total_seconds()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/afm_pipeline.json")
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = make_project_copy(Path(folder))
        command = [str(KEDRO), "run", "--pipeline=afm"] + ([f"--env={args.env}"] if args.env
                                                          else [])
        before = os.getloadavg()
        start = time.perf_counter()
        env = {**project_env(project), "COLUMNS": "200"}
        result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = os.getloadavg()
        if result.returncode != 0:
            raise SystemExit(f"kedro run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        metrics = json.loads((project / "data/08_reporting/afm_metrics.json").read_text())
        figures = {"afm.wall_s": round(wall, 1), "config.env": args.env or "base",
                   **node_seconds(result.stdout + result.stderr),
                   **{f"afm.metrics.{k}": v for k, v in metrics.items()
                      if k in ("afm.single_rupture.f1", "afm.macro_f1")},
                   "loadavg.before_1min": before[0], "loadavg.after_1min": after[0],
                   "loadavg.after_5min": after[1],
                   "machine.platform": platform.platform(),
                   "machine.usable_cpus": len(os.sched_getaffinity(0)),
                   "machine.torch": torch.__version__, "machine.python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
