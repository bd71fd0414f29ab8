"""Wall time of one whole `kedro run --pipeline=<name>` in a throwaway project copy (empty
data/, its own MLflow store), per-node seconds and the flat report it wrote, with the load
average before and after. For pipelines with their own script (afm_pipeline.py,
timeseries_pipeline.py) use that one. Writes a flat JSON object::

    <name>.wall_s, <name>.node.<node>_s, <name>.metrics.<metric>, loadavg.*, machine.*

    python benchmarks/pipeline_run.py --pipeline denoising \\
        --report data/08_reporting/denoising_metrics.json \\
        --out benchmarks/results/denoising_pipeline.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_common import machine_info, node_seconds, time_pipeline_run, write_figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--report", required=True,
                        help="the flat metrics JSON the run writes, relative to the project")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    args = parser.parse_args()
    run = time_pipeline_run(args.pipeline, args.report, args.env)
    name = args.pipeline
    write_figures({f"{name}.wall_s": run.wall_s, "config.env": args.env or "base",
                   **node_seconds(run.log, name),
                   **{f"{name}.metrics.{k}": v for k, v in sorted(run.metrics.items())},
                   **run.load_figures(), **machine_info()}, args.out)


if __name__ == "__main__":
    main()
