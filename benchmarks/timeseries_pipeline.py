"""Wall time of `kedro run --pipeline=timeseries_ucr` (issue 6's target: the four UCR/UEA
sets plus MNIST-1D in under 20 minutes on 2 cores), per-node seconds, and each dataset's
pretraining seconds beside TS2Vec's reference seconds as a ratio, in a throwaway copy of the
project (empty data/, its own MLflow store), default parameters unless ``--env`` says otherwise.
Writes a flat JSON object::

    timeseries.wall_s, timeseries.node.<node>_s, timeseries.metrics.<name>,
    timeseries.pretrain_ratio.<Dataset>, loadavg.*, machine.*

    python benchmarks/timeseries_pipeline.py --out benchmarks/results/timeseries_pipeline.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from bench_common import ROOT, machine_info, node_seconds, time_pipeline_run, write_figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/timeseries_pipeline.json")
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    parser.add_argument("--pipeline", default="timeseries_ucr",
                        help="timeseries_ucr (the 20-minute target) or timeseries (+ wav2vec)")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "conf/base/parameters_timeseries.yml").read_text())
    reference = params["timeseries"]["ucr"]["reference_seconds"]
    run = time_pipeline_run(args.pipeline, "data/08_reporting/timeseries_metrics.json", args.env)
    ratios = {f"timeseries.pretrain_ratio.{name}": run.metrics[key] / seconds
              for name, seconds in reference.items()
              if (key := f"ts.{name}.ts2vec.pretrain_seconds") in run.metrics}
    write_figures({"timeseries.wall_s": run.wall_s, "config.env": args.env or "base",
                   "config.pipeline": args.pipeline, **node_seconds(run.log, "timeseries"),
                   **{f"timeseries.metrics.{k}": v for k, v in sorted(run.metrics.items())},
                   **ratios, **run.load_figures(), **machine_info()}, args.out)


if __name__ == "__main__":
    main()
