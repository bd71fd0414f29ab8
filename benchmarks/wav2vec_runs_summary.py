"""Runs of benchmarks/wav2vec_fine_tuning.py summarised against scratch, with issue 17's bar
(item 5): per (variant, init, fraction) the test and validation macro-F1 and CER of every
fine-tuning seed with their mean and population std (as the pipeline reports them), the mean
F1 per stage, and, for each wav2vec group, its lead over the scratch runs of its own variant
(the same architecture and protocol), or of ``--baseline`` where its variant has none, at the
same fraction, beside the sum of the two stds that the lead must exceed::

    python benchmarks/wav2vec_runs_summary.py runs_a.jsonl runs_b.jsonl --baseline ctx80 \\
        --out benchmarks/results/wav2vec_summary.json      # and the same name .md

A group's seeds must be distinct (a seed twice means two runs were appended to one file) and
the wav2vec and scratch groups compared must have the same seeds, so that both drew the same
labelled nights.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from contrastive_signals.data.sleep_edf import STAGES  # the order of the runs' class_f1
from contrastive_signals.metrics.seeds import seed_spread

METRICS = ("macro_f1", "cer")  # macro-F1 higher is better, CER lower


def read_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Every JSON line of ``paths``, each tagged with the file it came from."""
    runs = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: expected a JSON-lines file of "
                                    "benchmarks/wav2vec_fine_tuning.py runs")
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    runs.append({**json.loads(line), "file": path.name})
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not JSON ({error.msg})") from None
    return runs


def group_runs(runs: list[dict[str, Any]]) -> dict[tuple[str, str, float], dict[str, Any]]:
    """Runs grouped by (variant, init, fraction), each group ordered by seed, with the test and
    validation spreads and the mean F1 per stage."""
    grouped: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        grouped[(run["variant"], run["init"], float(run["fraction"]))].append(run)
    summary = {}
    for key, members in sorted(grouped.items()):
        members.sort(key=lambda run: run["seed"])
        seeds = [run["seed"] for run in members]
        if len(set(seeds)) != len(seeds):
            files = sorted({run.get("file", "?") for run in members})
            raise ValueError(f"{key}: seed listed twice ({seeds}, from {files}): one run per "
                             "seed expected")
        summary[key] = {
            "seeds": seeds,
            **{f"{split}_{metric}": seed_spread([run[split][metric] for run in members])
               for split in ("test", "val") for metric in METRICS},
            "stage_f1": dict(zip(STAGES, np.mean([run["class_f1"] for run in members],
                                                 axis=0).round(4).tolist(), strict=True)),
            "seconds": seed_spread([run["seconds"] for run in members]),
        }
    return summary


def bar(pretrained: dict[str, Any], scratch: dict[str, Any], *, split: str = "test"
        ) -> dict[str, Any]:
    """Issue 17 item 5 on one split: wav2vec's lead over scratch (macro-F1 higher, CER lower)
    against the sum of the two stds; met where every lead exceeds its sum."""
    if pretrained["seeds"] != scratch["seeds"]:
        raise ValueError(f"seeds differ: wav2vec {pretrained['seeds']}, scratch "
                         f"{scratch['seeds']} (each seed draws its own labelled nights)")
    figures = {}
    for metric, sign in zip(METRICS, (1.0, -1.0), strict=True):
        ours, theirs = pretrained[f"{split}_{metric}"], scratch[f"{split}_{metric}"]
        lead = sign * (ours["mean"] - theirs["mean"])
        needed = ours["std"] + theirs["std"]
        figures[metric] = {"lead": lead, "stds_sum": needed, "margin": lead - needed}
    return {**figures, "met": all(f["margin"] > 0 for f in figures.values())}


def summarise(runs: list[dict[str, Any]], baseline: str) -> dict[str, Any]:
    """Groups and, for every wav2vec group with a scratch group at its fraction (of its own
    variant, else of ``baseline``), the bar on the test and on the validation nights."""
    groups = group_runs(runs)
    rows = []
    for (variant, init, fraction), group in groups.items():
        row = {"variant": variant, "init": init, "fraction": fraction, **group}
        against = next((name for name in (variant, baseline)
                        if (name, "scratch", fraction) in groups), None)
        if init == "w2v" and against is not None:
            scratch = groups[(against, "scratch", fraction)]
            row["scratch_variant"] = against
            row["bar"] = {split: bar(group, scratch, split=split) for split in ("test", "val")}
        rows.append(row)
    return {"baseline": baseline, "groups": rows}


def markdown(summary: dict[str, Any]) -> str:
    """One table row per group: the spreads, and the bar's margins on the test nights."""
    lines = ["| variant | init | fraction | test macro-F1 | test CER | val macro-F1 | val CER | "
             "F1 per stage (W / N1 / N2 / N3 / REM) | against scratch of | F1 lead - stds | "
             "CER lead - stds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary["groups"]:
        cells = [f"{row[f'{s}_{m}']['mean']:.3f} +- {row[f'{s}_{m}']['std']:.3f}"
                 for s in ("test", "val") for m in METRICS]
        test = row.get("bar", {}).get("test")
        margins = ([f"{test[m]['lead']:+.3f} - {test[m]['stds_sum']:.3f} = "
                    f"{test[m]['margin']:+.3f}" for m in METRICS] if test else ["", ""])
        lines.append("| " + " | ".join([row["variant"], row["init"], f"{row['fraction']:g}",
                                       *cells, " / ".join(f"{v:.3f}" for v in
                                                          row["stage_f1"].values()),
                                       row.get("scratch_variant", ""), *margins]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--baseline", required=True,
                        help="variant whose scratch runs a wav2vec group is compared with "
                             "where its own variant has no scratch runs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary = summarise(read_runs(args.runs), args.baseline)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
