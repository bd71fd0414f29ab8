"""The seed summary of benchmarks/ts_methods.py runs (benchmarks/ts_methods_summary.py): the
bar of issue 17, item 3, computed from per-seed test errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.ts_methods_summary import markdown, merge_runs, summarise

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ts_methods_summary.py"

METHODS = {"ts2vec": {"method": "ts2vec"}, "own": {"method": "softclt"}}


def _run(seeds, errors, seconds=10.0, cpu_seconds=None):
    """A ts_methods.py output: ``errors[dataset][method]`` = one error count per seed."""
    figures = {"config.seeds": seeds, "config.threads": 1, "config.methods": METHODS,
               "loadavg.before_1min": 1.0, "machine.torch": "x"}
    for dataset, by_method in errors.items():
        figures[f"{dataset}.test_series"] = 100
        for method, counts in by_method.items():
            for seed, count in zip(seeds, counts, strict=True):
                key = f"{dataset}.{method}.seed{seed}"
                figures[f"{key}.errors"] = count
                figures[f"{key}.svm.acc"] = 1 - count / 100
                figures[f"{key}.pretrain_seconds"] = seconds if method == "ts2vec" else 8.0
                if cpu_seconds is not None:
                    figures[f"{key}.pretrain_cpu_seconds"] = (cpu_seconds if method == "ts2vec"
                                                              else 8.0)
    return figures


def test_summary_means_spreads_and_the_bar_over_merged_seeds():
    first = _run([1, 2], {"A": {"ts2vec": [4, 6], "own": [5, 6]},
                          "B": {"ts2vec": [20, 30], "own": [10, 20]}})
    second = _run([3], {"A": {"ts2vec": [5], "own": [7]}, "B": {"ts2vec": [25], "own": [15]}})
    summary = summarise(merge_runs([first, second]))
    assert summary["config.seeds"] == [1, 2, 3]
    assert summary["A.own.errors"] == [5, 6, 7]
    assert summary["A.own.errors_mean"] == pytest.approx(6.0)
    assert summary["A.own.errors_std"] == pytest.approx(1.0)
    assert summary["bar.own.deficit_series.A"] == pytest.approx(1.0)  # 6 vs 5 on the mean
    assert summary["bar.own.deficit_series.B"] == pytest.approx(-10.0)
    assert summary["bar.own.worst_set"] == "A"
    # seed 1: own (0.95 + 0.90) / 2 vs ts2vec (0.96 + 0.80) / 2 -> +0.045
    assert summary["bar.own.acc_diff"][0] == pytest.approx(0.045)
    assert summary["bar.own.seeds_ahead"] == 3
    assert summary["bar.own.pretrain_ratio"] == pytest.approx(0.8)
    assert summary["bar.own.met"] is True
    assert summarise(merge_runs([first, second]), max_deficit=0.5)["bar.own.met"] is False
    text = markdown(summary, merge_runs([first, second]))
    assert "| `own` | 5 / 6 / 7 (6.0) | 10 / 20 / 15 (15.0) |" in text
    assert "bar met" in text


def test_a_method_behind_on_the_mean_or_slower_misses_the_bar():
    behind = summarise(merge_runs([_run([1], {"A": {"ts2vec": [4], "own": [5]}})]))
    assert behind["bar.own.met"] is False and behind["bar.own.acc_diff_mean"] < 0
    slower = summarise(merge_runs([_run([1], {"A": {"ts2vec": [5], "own": [4]}}, seconds=7.0)]))
    assert slower["bar.own.pretrain_ratio"] > 1 and slower["bar.own.met"] is False
    assert "bar.own.pretrain_cpu_ratio" not in slower


def test_cpu_seconds_decide_the_time_bar_where_measured():
    # wall seconds inflated by another job (own 8 s vs 7 s), CPU seconds not (8 vs 9)
    run = _run([1], {"A": {"ts2vec": [5], "own": [4]}}, seconds=7.0, cpu_seconds=9.0)
    summary = summarise(merge_runs([run]))
    assert summary["bar.own.pretrain_ratio"] == pytest.approx(8 / 7, abs=1e-3)
    assert summary["bar.own.pretrain_cpu_ratio"] == pytest.approx(8 / 9, abs=1e-3)
    assert summary["total.own.pretrain_cpu_seconds"] == 8.0 and summary["bar.own.met"] is True
    assert "0.889x CPU" in markdown(summary, merge_runs([run]))


@pytest.mark.parametrize(("change", "message"), [
    ({"config.ts2vec_from": "/tmp/old.json"}, "not side by side"),
    ({"config.seeds": [1]}, "repeats seeds"),
    ({"config.methods": {"ts2vec": {"method": "ts2vec"}}}, "other methods"),
    ({"A.test_series": 99}, "test series"),
    ({"config.complete": False}, "incomplete"),
])
def test_runs_that_cannot_be_merged_are_refused(change, message):
    first = _run([1], {"A": {"ts2vec": [4], "own": [5]}})
    second = {**_run([2], {"A": {"ts2vec": [4], "own": [5]}}), **change}
    with pytest.raises(ValueError, match=message):
        merge_runs([first, second])


def test_missing_seed_figures_are_named():
    run = _run([1, 2], {"A": {"ts2vec": [4, 5], "own": [5, 5]}})
    del run["A.own.seed2.errors"]
    with pytest.raises(ValueError, match=r"own has no seed 2 figures for \['A'\]"):
        summarise(merge_runs([run]))


def test_command_line_writes_json_and_markdown_and_names_a_missing_input(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_run([1], {"A": {"ts2vec": [4], "own": [3]}})))
    out = tmp_path / "summary.json"
    subprocess.run([sys.executable, str(SCRIPT), str(path), "--out", str(out)], check=True,
                   capture_output=True)
    assert json.loads(out.read_text())["bar.own.met"] is True
    assert "bar met" in out.with_suffix(".md").read_text()
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope.json"),
                              "--out", str(out)], capture_output=True, text=True)
    assert missing.returncode != 0 and "nope.json: no such ts_methods.py output" in missing.stderr


def test_ts_methods_refuses_an_earlier_output_without_every_ts2vec_figure(tmp_path):
    """--ts2vec-from with a seed or set missing (e.g. a run still going) fails before any
    training, naming what is missing."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"GunPoint.ts2vec.seed42.errors": 3}))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ts_methods.py"
    done = subprocess.run([sys.executable, str(script), "--datasets", "GunPoint", "MNIST1D",
                           "--seeds", "42", "43", "--ts2vec-from", str(earlier),
                           "--out", str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    for key in ("MNIST1D.ts2vec.seed42", "GunPoint.ts2vec.seed43", "MNIST1D.ts2vec.seed43"):
        assert key in done.stderr
    assert "GunPoint.ts2vec.seed42," not in done.stderr and not (tmp_path / "out.json").exists()
