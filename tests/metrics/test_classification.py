"""Classification figures by class name and the flat ablation report."""

import numpy as np
import pytest

from contrastive_signals.metrics.classification import ablation_report, classification_scores


def test_scores_by_class_name():
    scores = classification_scores(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]),
                                   ("a", "b", "c", "d"))
    assert scores["a.f1"] == pytest.approx(2 / 3) and scores["b.f1"] == pytest.approx(2 / 3)
    assert scores["c.f1"] == 1.0 and scores["d.f1"] == 0.0  # absent class counts as 0
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 4)
    assert scores["accuracy"] == 0.75


def test_ablation_report_is_flat_and_sorted():
    report = ablation_report(
        "x", headline={"macro_f1": 0.5}, baselines={"base": {"macro_f1": 0.4, "acc": 1}},
        variants={"v1": {"macro_f1": 0.1, "other": 9.0}}, variant_figures=("macro_f1",),
        counts={"n": 3})
    assert report == {"x.base.acc": 1.0, "x.base.macro_f1": 0.4, "x.macro_f1": 0.5, "x.n": 3.0,
                      "x.v1.macro_f1": 0.1}
    assert list(report) == sorted(report)
