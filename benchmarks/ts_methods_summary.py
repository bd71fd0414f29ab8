"""Runs of benchmarks/ts_methods.py over disjoint seeds, summarised against TS2Vec: per set and
method the test errors of every seed with their mean and sample standard deviation, the mean
accuracy over the sets (per seed, then mean +- std), the paired per-seed difference to TS2Vec,
the pretraining seconds (wall, and CPU where measured), and issue 17's bar for a method of the project's own (better mean
accuracy than TS2Vec, and no set more than ``--max-deficit`` test series below TS2Vec on the
mean over the seeds; pretraining no slower in total: in CPU seconds where the runs measured
them, which other jobs' load moves far less than wall seconds)::

    python benchmarks/ts_methods_summary.py seeds42_44.json seeds45_46.json \
        --out benchmarks/results/ts_methods_softclt_5seeds.json    # and the same name .md

Only figures measured side by side count: a run whose TS2Vec figures came from an earlier
output (``config.ts2vec_from``) is refused, since its seconds were not taken in the same run.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from contrastive_signals.metrics.seeds import mean_and_std

REFERENCE = "ts2vec"
_ERRORS = re.compile(r"^(?P<dataset>[^.]+)\.(?P<method>[^.]+)\.seed(?P<seed>\d+)\.errors$")


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figures dict from several ts_methods.py outputs over disjoint seeds, with the same
    methods (configuration equal apart from the seed) and the same test sets."""
    merged: dict[str, Any] = {"config.seeds": []}
    methods: dict[str, Any] | None = None
    for index, run in enumerate(runs):
        if run.get("config.complete") is False:
            raise ValueError(f"run {index} is incomplete (stopped or killed before its end): "
                             "rerun it, or take its figures by hand for exploring only")
        if run.get("config.ts2vec_from"):
            raise ValueError(f"run {index} took TS2Vec's figures from "
                             f"{run['config.ts2vec_from']}: not side by side")
        seeds = run["config.seeds"]
        if set(seeds) & set(merged["config.seeds"]):
            raise ValueError(f"run {index} repeats seeds "
                             f"{sorted(set(seeds) & set(merged['config.seeds']))}")
        if methods is not None and run["config.methods"] != methods:
            raise ValueError(f"run {index} has other methods or settings than run 0: "
                             f"{sorted(run['config.methods'])} vs {sorted(methods)}")
        methods = run["config.methods"]
        for key, value in run.items():
            if key.endswith(".test_series") and merged.get(key, value) != value:
                raise ValueError(f"{key}: {merged[key]} test series in an earlier run, "
                                 f"{value} in run {index}")
            if not key.startswith(("config.", "loadavg.", "machine.")):
                merged[key] = value
        merged["config.seeds"] = sorted(merged["config.seeds"] + list(seeds))
    merged["config.methods"] = methods
    return merged


def _errors_table(figures: dict[str, Any]) -> dict[tuple[str, str], dict[int, int]]:
    """``{(dataset, method): {seed: test errors}}``."""
    table: dict[tuple[str, str], dict[int, int]] = {}
    for key, value in figures.items():
        match = _ERRORS.match(key)
        if match:
            table.setdefault((match["dataset"], match["method"]), {})[int(match["seed"])] = value
    return table


def summarise(figures: dict[str, Any], max_deficit: float = 1.0) -> dict[str, Any]:
    """Flat summary (see the module docstring) of merged ts_methods.py figures; every method
    is compared with :data:`REFERENCE` on the seeds and sets both have."""
    seeds = figures["config.seeds"]
    table = _errors_table(figures)
    datasets = list(dict.fromkeys(dataset for dataset, _ in table))
    methods = list(dict.fromkeys(method for _, method in table))
    if REFERENCE not in methods:
        raise ValueError(f"no '{REFERENCE}' figures to compare with")
    out: dict[str, Any] = {"config.seeds": seeds, "config.datasets": datasets,
                           "config.methods": methods, "config.max_deficit": max_deficit}
    per_seed_mean: dict[str, list[float]] = {}
    for method in methods:
        accuracies = []  # [seed][dataset]
        for seed in seeds:
            missing = [d for d in datasets if seed not in table.get((d, method), {})]
            if missing:
                raise ValueError(f"{method} has no seed {seed} figures for {missing}")
            accuracies.append([1 - table[(d, method)][seed] / figures[f"{d}.test_series"]
                               for d in datasets])
        per_seed_mean[method] = [float(np.mean(row)) for row in accuracies]
        for column, dataset in enumerate(datasets):
            errors = [table[(dataset, method)][seed] for seed in seeds]
            key = f"{dataset}.{method}"
            out[f"{key}.errors"] = errors
            out[f"{key}.errors_mean"], out[f"{key}.errors_std"] = mean_and_std(errors, ddof=1)
            out[f"{key}.acc_mean"], out[f"{key}.acc_std"] = mean_and_std(
                [row[column] for row in accuracies], ddof=1)
        out[f"mean.{method}.acc"] = per_seed_mean[method]
        out[f"mean.{method}.acc_mean"], out[f"mean.{method}.acc_std"] = mean_and_std(
            per_seed_mean[method], ddof=1)
        for figure in ("pretrain_seconds", "pretrain_cpu_seconds"):
            keys = [f"{d}.{method}.seed{s}.{figure}" for d in datasets for s in seeds]
            if all(key in figures for key in keys):  # CPU seconds: runs since 2026-12-06
                out[f"total.{method}.{figure}"] = round(sum(figures[k] for k in keys), 1)
    for method in methods:
        if method == REFERENCE:
            continue
        differences = [a - b for a, b in zip(per_seed_mean[method], per_seed_mean[REFERENCE],
                                             strict=True)]
        deficits = {d: out[f"{d}.{method}.errors_mean"] - out[f"{d}.{REFERENCE}.errors_mean"]
                    for d in datasets}
        worst = max(deficits, key=deficits.get)
        ratios = {figure: out[f"total.{method}.{figure}"] / out[f"total.{REFERENCE}.{figure}"]
                  for figure in ("pretrain_seconds", "pretrain_cpu_seconds")
                  if f"total.{method}.{figure}" in out}
        # CPU seconds where measured: wall seconds follow other jobs' load on a shared machine
        ratio = ratios.get("pretrain_cpu_seconds", ratios["pretrain_seconds"])
        bar = f"bar.{method}"
        out[f"{bar}.acc_diff"] = differences
        out[f"{bar}.acc_diff_mean"], out[f"{bar}.acc_diff_std"] = mean_and_std(differences, ddof=1)
        out[f"{bar}.seeds_ahead"] = sum(d > 0 for d in differences)
        out.update({f"{bar}.deficit_series.{d}": v for d, v in deficits.items()})
        out[f"{bar}.worst_set"], out[f"{bar}.worst_deficit_series"] = worst, deficits[worst]
        out[f"{bar}.pretrain_ratio"] = round(ratios["pretrain_seconds"], 3)
        if "pretrain_cpu_seconds" in ratios:
            out[f"{bar}.pretrain_cpu_ratio"] = round(ratios["pretrain_cpu_seconds"], 3)
        out[f"{bar}.met"] = bool(out[f"{bar}.acc_diff_mean"] > 0
                                 and deficits[worst] <= max_deficit and ratio <= 1.0)
    return out


def markdown(summary: dict[str, Any], figures: dict[str, Any]) -> str:
    """Tables of test errors per seed (mean) and mean accuracies, and the bar per method."""
    seeds, datasets = summary["config.seeds"], summary["config.datasets"]
    methods = summary["config.methods"]
    head = ["method"] + [f"{d} ({figures[f'{d}.test_series']})" for d in datasets]
    lines = [f"Test errors per seed ({' / '.join(map(str, seeds))}) and their mean; "
             "mean accuracy over the sets, mean +- std over the seeds.", "",
             "| " + " | ".join(head + ["mean accuracy", "pretrain s"]) + " |",
             "|" + " :--- |" + " ---: |" * (len(head) + 1)]
    for method in methods:
        cells = [" / ".join(map(str, summary[f"{d}.{method}.errors"]))
                 + f" ({summary[f'{d}.{method}.errors_mean']:.1f})" for d in datasets]
        lines.append(f"| `{method}` | " + " | ".join(cells)
                     + f" | {summary[f'mean.{method}.acc_mean']:.4f} +- "
                       f"{summary[f'mean.{method}.acc_std']:.4f}"
                     + f" | {summary[f'total.{method}.pretrain_seconds']:.0f} |")
    for method in methods:
        if method == REFERENCE:
            continue
        bar = f"bar.{method}"
        lines += ["", f"`{method}` against `{REFERENCE}`: mean accuracy "
                  f"{summary[f'{bar}.acc_diff_mean']:+.4f} +- {summary[f'{bar}.acc_diff_std']:.4f}"
                  f" (paired over seeds; ahead on {summary[f'{bar}.seeds_ahead']} of "
                  f"{len(seeds)}); worst set {summary[f'{bar}.worst_set']}, "
                  f"{summary[f'{bar}.worst_deficit_series']:+.1f} test series on the mean "
                  f"(limit {summary['config.max_deficit']:+.1f}); pretraining "
                  f"{summary[f'{bar}.pretrain_ratio']:.3f}x wall"
                  + (f", {summary[f'{bar}.pretrain_cpu_ratio']:.3f}x CPU"
                     if f"{bar}.pretrain_cpu_ratio" in summary else "") + "; bar "
                  f"{'met' if summary[f'{bar}.met'] else 'not met'}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-deficit", type=float, default=1.0)
    args = parser.parse_args()
    for path in args.runs:
        if not path.is_file():
            raise SystemExit(f"{path}: no such ts_methods.py output")
    figures = merge_runs([json.loads(path.read_text()) for path in args.runs])
    summary = {"config.sources": [str(p) for p in args.runs],
               "config.method_settings": figures["config.methods"],
               **summarise(figures, args.max_deficit)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(summary, figures))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
