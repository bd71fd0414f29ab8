"""Wall time of the whole `kedro run --pipeline=timeseries` (issue 6's target: the four UCR/UEA
sets plus MNIST-1D in under 20 minutes on 2 cores), per-node seconds, and each dataset's
pretraining seconds beside TS2Vec's reference seconds as a ratio, in a throwaway copy of the
project (empty data/, its own MLflow store), default parameters unless ``--env`` says otherwise.

The load average before and after is recorded because other processes inflate wall times on a
shared machine. Writes a flat JSON object::

    timeseries.wall_s, timeseries.node.<node>_s, timeseries.metrics.<name>,
    timeseries.pretrain_ratio.<Dataset>, loadavg.*, machine.*

    python benchmarks/timeseries_pipeline.py --out benchmarks/results/timeseries_pipeline.json
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
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.project import KEDRO, make_project_copy, project_env  # noqa: E402

_STAMP = re.compile(r"^\[(\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\]")
_NODE = re.compile(r"(Running|Completed) node:\s*([A-Za-z0-9_.]+)")


def node_seconds(log: str) -> dict[str, float]:
    """Seconds per node from Kedro's ``[stamp] INFO Running node: <name>`` / ``Completed node:
    <name>`` lines (a blank stamp column repeats the previous stamp)."""
    stamp, started, seconds = None, {}, {}
    for line in log.splitlines():
        match = _STAMP.match(line)
        if match:
            stamp = datetime.strptime(match.group(1), "%m/%d/%y %H:%M:%S")
        node = _NODE.search(line)
        if node is None or stamp is None:
            continue
        kind, name = node.groups()
        name = name.removeprefix("timeseries.")
        if kind == "Running":
            started[name] = stamp
        elif name in started:
            seconds[f"timeseries.node.{name}_s"] = (stamp - started[name]).total_seconds()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/timeseries_pipeline.json")
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "conf/base/parameters_timeseries.yml").read_text())
    reference = params["timeseries"]["ucr"]["reference_seconds"]
    with tempfile.TemporaryDirectory() as folder:
        project = make_project_copy(Path(folder))
        command = [str(KEDRO), "run", "--pipeline=timeseries"] + (
            [f"--env={args.env}"] if args.env else [])
        before = os.getloadavg()
        start = time.perf_counter()
        env = {**project_env(project), "COLUMNS": "200"}
        result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = os.getloadavg()
        if result.returncode != 0:
            raise SystemExit(f"kedro run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        metrics = json.loads((project / "data/08_reporting/timeseries_metrics.json").read_text())
    ratios = {f"timeseries.pretrain_ratio.{name}": metrics[key] / seconds
              for name, seconds in reference.items()
              if (key := f"ts.{name}.ts2vec.pretrain_seconds") in metrics}
    figures = {"timeseries.wall_s": round(wall, 1), "config.env": args.env or "base",
               **node_seconds(result.stdout + result.stderr),
               **{f"timeseries.metrics.{k}": v for k, v in sorted(metrics.items())}, **ratios,
               "loadavg.before_1min": before[0], "loadavg.after_1min": after[0],
               "loadavg.after_5min": after[1], "loadavg.after_15min": after[2],
               "machine.platform": platform.platform(),
               "machine.usable_cpus": len(os.sched_getaffinity(0)),
               "machine.torch": torch.__version__, "machine.python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
