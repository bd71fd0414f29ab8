"""Results table, markdown rendering and flat metric names."""

import math

import numpy as np
import pandas as pd
import pytest

from contrastive_signals.metrics.report import (
    finite_report,
    flatten_metrics,
    merge_reports,
    reference_table,
    results_table,
    to_markdown,
)

ROWS = {
    "simclr": {"linear_probe.acc": 0.91234, "knn.acc": 0.8},
    "scratch": {"knn.acc": 0.5, "map": float("nan")},
}


def test_results_table_orders_columns_and_fills_missing_with_nan():
    table = results_table(ROWS, columns=["linear_probe.acc"])
    assert list(table.index) == ["simclr", "scratch"]
    assert table.index.name == "model"
    assert list(table.columns) == ["linear_probe.acc", "knn.acc", "map"]  # listed, then sorted
    assert math.isnan(table.loc["scratch", "linear_probe.acc"])
    assert table.loc["simclr", "knn.acc"] == 0.8
    assert list(results_table(ROWS).columns) == ["knn.acc", "linear_probe.acc", "map"]


def test_to_markdown_renders_without_tabulate():
    text = to_markdown(results_table(ROWS, columns=["linear_probe.acc"]), float_format=".2f")
    assert text == (
        "| model | linear_probe.acc | knn.acc | map |\n"
        "| :--- | ---: | ---: | ---: |\n"
        "| simclr | 0.91 | 0.80 | – |\n"
        "| scratch | – | 0.50 | – |"
    )


def test_to_markdown_escapes_pipes_and_keeps_text_cells():
    table = pd.DataFrame({"note": ["a|b"], "n": [np.nan]}, index=pd.Index(["m"]))
    assert to_markdown(table).splitlines()[2] == "| m | a\\|b | – |"


def test_flatten_metrics_names_and_skips_missing():
    flat = flatten_metrics({**ROWS, "vae": {"psnr": None, "loss": np.float32(1.5)}})
    assert flat == {
        "simclr.linear_probe.acc": 0.91234,
        "simclr.knn.acc": 0.8,
        "scratch.knn.acc": 0.5,
        "vae.loss": 1.5,
    }
    assert all(type(v) is float for v in flat.values())


def test_finite_report_sorts_and_names_non_finite_metrics():
    assert list(finite_report({"b": 1, "a": np.float32(2.5)}).items()) == [("a", 2.5), ("b", 1.0)]
    with pytest.raises(ValueError, match=r"non-finite metrics: \['a', 'c'\]"):
        finite_report({"a": math.nan, "b": 0.0, "c": -math.inf})


def test_merge_reports_refuses_a_name_twice():
    assert merge_reports({"a.x": 1}, {"b.y": 2.5}) == {"a.x": 1.0, "b.y": 2.5}
    with pytest.raises(ValueError, match=r"reported twice: \['a.x'\]"):
        merge_reports({"a.x": 1}, {"a.x": 2})


def test_reference_table_shows_targets_and_time_ratios():
    metrics = {"ts.D.m.svm.acc": 0.9, "ts.D.m.linear.acc": 0.8, "ts.D.raw_1nn.acc": 0.7}
    table = reference_table(metrics, {"ts.D.m.pretrain_seconds": 4.0}, prefix="ts",
                            datasets=["D"], methods=["m"], targets={"D": 0.95},
                            published={"D": "paper 0.9"}, reference_seconds={"D": 2.0})
    row = next(line for line in table.splitlines() if line.startswith("| D / m"))
    assert "0.900" in row and "paper 0.9" in row and "2.000" in row and table.endswith("\n")


def test_baseline_table_puts_baselines_beside_methods():
    from contrastive_signals.metrics.report import baseline_table

    metrics = {"ts.GunPoint.minirocket.acc": 0.99, "ts.GunPoint.minirocket.fit_seconds": 0.4,
               "ts.GunPoint.ts2vec.svm.acc": 0.98}
    table = baseline_table(metrics, prefix="ts", datasets=["GunPoint"],
                           baselines=["minirocket"], methods=["ts2vec"])
    header, _, row = table.strip().splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "dataset", "minirocket acc", "minirocket fit s", "ts2vec svm acc"]
    assert [c.strip() for c in row.strip("|").split("|")] == ["GunPoint", "0.990", "0.400",
                                                               "0.980"]
