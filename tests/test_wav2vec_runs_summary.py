"""The summary of benchmarks/wav2vec_fine_tuning.py runs (benchmarks/wav2vec_runs_summary.py):
spreads over the fine-tuning seeds and issue 17's bar for item 5, computed from per-run lines."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.wav2vec_runs_summary import bar, group_runs, read_runs, summarise

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "wav2vec_runs_summary.py"


def _run(variant, init, seed, f1, cer, *, fraction=0.1, val=None):
    """One line of wav2vec_fine_tuning.py's output, reduced to what the summary reads."""
    val_f1, val_cer = val or (f1, cer)
    return {"variant": variant, "init": init, "fraction": fraction, "seed": seed,
            "test": {"macro_f1": f1, "cer": cer}, "val": {"macro_f1": val_f1, "cer": val_cer},
            "class_f1": [0.9, 0.7, 0.9, 0.9, f1], "seconds": 10.0 + seed}


def _write(path, runs):
    path.write_text("".join(json.dumps(run) + "\n" for run in runs))
    return path


SCRATCH = [_run("base", "scratch", s, f1, cer)
           for s, f1, cer in [(0, 0.80, 0.55), (1, 0.84, 0.53), (2, 0.82, 0.54)]]


def test_group_spreads_are_population_std_over_seeds_in_seed_order():
    runs = [_run("a", "w2v", 2, 0.9, 0.4), _run("a", "w2v", 0, 0.8, 0.6)]
    group = group_runs(runs)[("a", "w2v", 0.1)]
    assert group["seeds"] == [0, 2]
    assert group["test_macro_f1"]["values"] == [0.8, 0.9]
    assert group["test_macro_f1"]["mean"] == pytest.approx(0.85)
    assert group["test_macro_f1"]["std"] == pytest.approx(0.05)  # ddof 0
    assert group["stage_f1"]["REM"] == pytest.approx(0.85)
    assert group["seconds"]["mean"] == pytest.approx(11.0)


def test_bar_met_only_when_both_leads_exceed_the_sum_of_stds():
    clear = [_run("w", "w2v", s, f1, cer)
             for s, f1, cer in [(0, 0.90, 0.45), (1, 0.91, 0.44), (2, 0.90, 0.45)]]
    groups = group_runs(SCRATCH + clear)
    result = bar(groups[("w", "w2v", 0.1)], groups[("base", "scratch", 0.1)])
    assert result["macro_f1"]["lead"] == pytest.approx(0.08333, abs=1e-4)
    assert result["cer"]["lead"] == pytest.approx(0.09333, abs=1e-4)  # lower CER is a lead
    assert result["met"]

    # the same F1 lead, but CER level: not met
    level_cer = [{**run, "test": {**run["test"], "cer": scratch["test"]["cer"]}}
                 for run, scratch in zip(clear, SCRATCH, strict=True)]
    groups = group_runs(SCRATCH + level_cer)
    result = bar(groups[("w", "w2v", 0.1)], groups[("base", "scratch", 0.1)])
    assert result["cer"]["lead"] == pytest.approx(0.0)
    assert result["cer"]["margin"] < 0 and not result["met"]


def test_a_lead_inside_the_spread_is_not_met():
    # ahead on the mean by 0.013, but scratch's std is 0.016 and ours 0.038
    noisy = [_run("w", "w2v", s, f1, 0.40) for s, f1 in [(0, 0.78), (1, 0.86), (2, 0.86)]]
    groups = group_runs(SCRATCH + noisy)
    result = bar(groups[("w", "w2v", 0.1)], groups[("base", "scratch", 0.1)])
    assert result["macro_f1"]["lead"] > 0 > result["macro_f1"]["margin"]
    assert not result["met"]


def test_summary_compares_each_wav2vec_group_with_the_baselines_scratch_at_its_fraction():
    runs = SCRATCH + [_run("w", "w2v", s, 0.9, 0.45, val=(0.8, 0.6)) for s in range(3)] + [
        _run("full", "w2v", 0, 0.92, 0.45, fraction=1.0)]
    summary = summarise(runs, "base")
    by_name = {(row["variant"], row["init"], row["fraction"]): row for row in summary["groups"]}
    assert by_name[("w", "w2v", 0.1)]["bar"]["test"]["met"]
    assert not by_name[("w", "w2v", 0.1)]["bar"]["val"]["met"]  # val figures are worse
    assert "bar" not in by_name[("full", "w2v", 1.0)]  # no scratch at 100 % in the baseline
    assert "bar" not in by_name[("base", "scratch", 0.1)]
    assert by_name[("w", "w2v", 0.1)]["scratch_variant"] == "base"


def test_a_variant_with_its_own_scratch_runs_is_compared_with_those():
    own_scratch = [_run("w", "scratch", s, 0.95, 0.30) for s in range(3)]
    runs = SCRATCH + own_scratch + [_run("w", "w2v", s, 0.9, 0.45) for s in range(3)]
    row = next(r for r in summarise(runs, "base")["groups"] if r["init"] == "w2v")
    assert row["scratch_variant"] == "w"
    assert row["bar"]["test"]["macro_f1"]["lead"] == pytest.approx(-0.05)
    assert not row["bar"]["test"]["met"]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_runs([tmp_path / "missing.jsonl"])
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(SCRATCH[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match="broken.jsonl, line 2"):
        read_runs([broken])
    with pytest.raises(ValueError, match=r"seed listed twice .*broken.jsonl"):
        group_runs(SCRATCH + [{**SCRATCH[0], "file": "broken.jsonl"}])
    groups = group_runs(SCRATCH + [_run("w", "w2v", s, 0.9, 0.4) for s in (0, 1)])
    with pytest.raises(ValueError, match="seeds differ"):
        bar(groups[("w", "w2v", 0.1)], groups[("base", "scratch", 0.1)])


def test_command_line_writes_json_and_markdown(tmp_path):
    runs = _write(tmp_path / "runs.jsonl",
                  SCRATCH + [_run("w", "w2v", s, 0.85, 0.5) for s in range(3)])
    out = tmp_path / "summary.json"
    subprocess.run([sys.executable, str(SCRIPT), str(runs), "--baseline", "base", "--out",
                    str(out)], check=True, capture_output=True)
    summary = json.loads(out.read_text())
    assert summary["baseline"] == "base"
    row = next(r for r in summary["groups"] if r["init"] == "w2v")
    assert row["bar"]["test"]["macro_f1"]["lead"] == pytest.approx(0.03)
    table = out.with_suffix(".md").read_text()
    assert "| w | w2v | 0.1 | 0.850 +- 0.000 |" in table
