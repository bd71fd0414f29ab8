"""What checkpoints cost: the default digits run (`kedro run`, every training node) with
checkpoints at the default interval, with checkpoints off, and with a checkpoint after every
epoch (the worst case), side by side in one script, in fresh project copies. Also checks that
checkpointing changes no figure. Writes a flat JSON::

    python benchmarks/checkpoint_overhead.py --out benchmarks/results/checkpoint_overhead.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_common import machine_info, time_pipeline_run, write_figures

REPORT = "data/08_reporting/evaluation_metrics.json"
SETTINGS = {
    "default": (),
    "off": ("--params", "runtime.checkpoints.enabled=false"),
    "every_epoch": ("--params", "runtime.checkpoints.every_epochs=1"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    args = parser.parse_args()
    runs = {name: time_pipeline_run("__default__", REPORT, args.env, extra)
            for name, extra in SETTINGS.items()}
    off = runs["off"].wall_s
    figures: dict[str, object] = {"config.env": args.env or "base"}
    for name, run in runs.items():
        figures[f"{name}.wall_s"] = run.wall_s
        figures[f"{name}.overhead_vs_off"] = round(run.wall_s / off - 1.0, 4)
        figures[f"{name}.loadavg.before_1min"] = run.load_before[0]
        differing = sorted(k for k, v in run.metrics.items()
                           if "seconds" not in k and runs["off"].metrics.get(k) != v)
        figures[f"{name}.metrics_differing_from_off"] = len(differing)
    write_figures({**figures, **machine_info()}, args.out)


if __name__ == "__main__":
    main()
