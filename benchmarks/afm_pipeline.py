"""Wall time of the whole `kedro run --pipeline=afm` (issue 7's target: under 10 minutes
on 2 cores) and of its stages, in a throwaway copy of the project (empty data/, its own
MLflow store), with the default parameters unless ``--env`` names another environment.
Writes a flat JSON object::

    afm.wall_s, afm.node.<node name>_s, afm.metrics.<name>, loadavg.*, machine.*

    python benchmarks/afm_pipeline.py --out benchmarks/results/afm_pipeline.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_common import ROOT, machine_info, node_seconds, time_pipeline_run, write_figures

HEADLINE = ("afm.single_rupture.f1", "afm.macro_f1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/afm_pipeline.json")
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    args = parser.parse_args()
    run = time_pipeline_run("afm", "data/08_reporting/afm_metrics.json", args.env)
    write_figures({"afm.wall_s": run.wall_s, "config.env": args.env or "base",
                   **node_seconds(run.log, "afm"),
                   **{f"afm.metrics.{k}": v for k, v in run.metrics.items() if k in HEADLINE},
                   **run.load_figures(), **machine_info()}, args.out)


if __name__ == "__main__":
    main()
