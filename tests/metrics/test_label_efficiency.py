"""Label-efficiency summaries: mean and population std over seeds per condition and share."""

import pytest

from contrastive_signals.metrics.label_efficiency import fraction_name, summarise_runs


def test_fraction_names():
    assert fraction_name(0.1) == "10pc" and fraction_name(1.0) == "100pc"
    assert fraction_name(0.5) == "50pc"


def test_summary_by_init_and_fraction():
    runs = [{"init": init, "fraction": fraction, "seed": seed, "recordings": ["x"] * n,
             "metrics": {"cer": value, "kappa": 1.0}}
            for init, fraction, n, values in (("w2v", 0.1, 1, (0.2, 0.4)),
                                              ("scratch", 1.0, 4, (0.5, 0.5)))
            for seed, value in enumerate(values)]
    flat = summarise_runs(runs, metrics=("cer", "kappa"), prefix="sleep")
    assert list(flat) == [
        "sleep.scratch_100pc.cer", "sleep.scratch_100pc.cer.std", "sleep.scratch_100pc.kappa",
        "sleep.scratch_100pc.kappa.std", "sleep.scratch_100pc.n_recordings",
        "sleep.w2v_10pc.cer", "sleep.w2v_10pc.cer.std", "sleep.w2v_10pc.kappa",
        "sleep.w2v_10pc.kappa.std", "sleep.w2v_10pc.n_recordings"]
    assert flat["sleep.w2v_10pc.cer"] == pytest.approx(0.3)
    assert flat["sleep.w2v_10pc.cer.std"] == pytest.approx(0.1)
    assert flat["sleep.scratch_100pc.n_recordings"] == 4.0
    assert summarise_runs([], metrics=("cer",), prefix="sleep") == {}
