"""`make run-all` (scripts/run_all.py): the summary logic on hand-made results, the stage list
against the registered pipelines, and real runs of tiny conf/test pipelines through it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.golden import PIPELINE_REPORTS
from tests.e2e.project import make_project_copy, project_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "run_all.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("run_all", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


run_all = _load_script()
STAGE = run_all.Stage("ctc", "ctc", 10, "data/08_reporting/ctc_metrics.json",
                      ("ctc_cnn.cer", "sleep.*_acc", "nothing.*"))


def test_key_figures_follow_the_patterns_and_name_what_is_missing():
    report = {"ctc_cnn.cer": 0.1, "sleep.epoch_acc": 0.8, "sleep.a_acc": 0.5, "x": 1.0}
    figures, missing = run_all.key_figures(report, STAGE.figures)
    assert list(figures.items()) == [("ctc_cnn.cer", 0.1), ("sleep.a_acc", 0.5),
                                     ("sleep.epoch_acc", 0.8)]
    assert missing == ["nothing.*"]


@pytest.mark.parametrize(("returncode", "report", "interrupted", "status", "within"), [
    (0, {"ctc_cnn.cer": 0.1}, False, "ok", True),
    (1, None, False, "failed (exit 1)", None),
    (0, None, False, "no report", None),
    (None, None, False, "not run", None),
    (None, None, True, "interrupted", None),
])
def test_stage_result_status(returncode, report, interrupted, status, within):
    row = run_all.stage_result(STAGE, returncode=returncode, seconds=61.26, report=report,
                               log_tail="Traceback ...", interrupted=interrupted)
    assert row["status"] == status
    assert row["within_budget"] is within
    assert row["seconds"] == 61.3 and row["budget_seconds"] == 600.0
    assert row["log_tail"] == ("" if status == "ok" else "Traceback ...")


def test_over_budget_and_unbudgeted_stages():
    over = run_all.stage_result(STAGE, returncode=0, seconds=601.0, report={})
    free = run_all.stage_result(run_all.Stage("signal_features", "signal_features", None),
                                returncode=0, seconds=5.0, report=None)
    assert over["within_budget"] is False and over["missing_figures"] == list(STAGE.figures)
    assert free["status"] == "ok" and free["within_budget"] is None
    summary = run_all.summarise([over, free], env=None, started="now", cpus=2)
    assert summary["env"] == "base" and summary["total_seconds"] == 606.0
    assert summary["total_budget_seconds"] == 600.0
    assert summary["all_ok"] and not summary["all_within_budget"]


def test_markdown_table_has_a_row_per_stage_and_a_total():
    rows = [run_all.stage_result(STAGE, returncode=0, seconds=75.0,
                                 report={"ctc_cnn.cer": 0.012344, "sleep.epoch_acc": 0.8},
                                 load_after=(1.5, 1.0, 0.5)),
            run_all.stage_result(run_all.Stage("afm", "afm", 10), returncode=2, seconds=3725.0,
                                 report=None, load_after=(2.5, 1.0, 0.5))]
    text = run_all.markdown(run_all.summarise(rows, env="test", started="today", cpus=2))
    lines = text.splitlines()
    assert lines[0] == ("# run-all summary (today, env `test`, 2 CPUs, 1-min load average after "
                        "each stage 1.5-2.5)")
    assert lines[4] == ("| ctc | `ctc` | ok | 1:15 | 10:00 | 12 % | `ctc_cnn.cer` 0.01234, "
                        "`sleep.epoch_acc` 0.8, `nothing.*` missing |")
    assert lines[5] == "| afm | `afm` | failed (exit 2) | 1:02:05 | 10:00 | 621 % | – |"
    assert lines[6] == "| **total** | | 1/2 ok | 1:03:20 | 20:00 | 317 % | |"


def test_format_seconds():
    assert [run_all.format_seconds(s) for s in (None, 0, 59.6, 600, 3599.4, 3600, 7325)] == [
        "–", "0:00", "1:00", "10:00", "59:59", "1:00:00", "2:02:05"]


def test_select_stages_keeps_the_sequence_order_and_rejects_unknown_names():
    assert [s.name for s in run_all.select_stages("denoising, __default__")] == ["digits",
                                                                                  "denoising"]
    assert len(run_all.select_stages(None)) == len(run_all.STAGES)
    with pytest.raises(SystemExit, match=r"unknown stage\(s\) \['sleeping'\]; known: digits"):
        run_all.select_stages("ctc,sleeping")


def test_stages_cover_every_registered_pipeline():
    """Each registered pipeline runs as a stage or inside one (inference pipelines, which
    need a user's files, are left out): a new pipeline must be added to run_all.STAGES."""
    from contrastive_signals.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    staged = set().union(*({n.name for n in pipelines[s.pipeline].nodes} for s in run_all.STAGES))
    uncovered = sorted(name for name, pipe in pipelines.items()
                       if not name.endswith("_inference") and not {n.name for n in pipe.nodes} <= staged)
    assert not uncovered, f"pipelines not run by scripts/run_all.py: {uncovered}"


def test_stage_reports_are_the_golden_reports():
    golden = {name: next(iter(reports.values())) for name, reports in PIPELINE_REPORTS.items()}
    # every golden report is a stage's report (generative's has no golden: its figures move
    # with the sampling, not bit-for-bit checked)
    assert {s.pipeline: s.report for s in run_all.STAGES
            if s.report and s.pipeline in golden} == golden


def _run_script(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--project", str(project), *args],
                          env=project_env(project), capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_run_all_on_tiny_pipelines(tmp_path):
    """`ctc` then `signal_features` (which reads what `ctc` wrote) at conf/test sizes: both ok,
    the summary's figures are the run's report, files and logs written."""
    project = make_project_copy(tmp_path)
    result = _run_script(project, "--env=test", "--only", "signal_features,ctc")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reporting = project / "data/08_reporting"
    summary = json.loads((reporting / "run_all_summary.json").read_text())
    assert [(r["stage"], r["status"]) for r in summary["stages"]] == [
        ("ctc", "ok"), ("signal_features", "ok")]
    ctc = summary["stages"][0]
    report = json.loads((reporting / "ctc_metrics.json").read_text())
    assert ctc["figures"] == {name: report[name] for name in run_all.STAGES[1].figures}
    assert ctc["within_budget"] is True and not ctc["missing_figures"]
    assert summary["env"] == "test" and summary["all_ok"] and summary["all_within_budget"]
    assert (project / "data/04_feature/sleep_epoch_features.pt").is_file()
    table = (reporting / "run_all_summary.md").read_text()
    assert "| ctc | `ctc` | ok |" in table and "| **total** | | 2/2 ok |" in table
    assert table in result.stdout
    assert "Completed" in (reporting / "run_all_logs/ctc.log").read_text()


def test_a_failed_stage_is_recorded_and_stop_on_failure_stops(tmp_path, monkeypatch, capsys):
    """The sequence and its summary with stand-in commands: the first stage fails (its log's
    tail kept), `--stop-on-failure` leaves the next one not run, the exit code is 1."""
    def fake_command(stage, env):
        if stage.name == "digits":  # succeeds and writes its report (cwd: the project)
            return [sys.executable, "-c", "import json, pathlib; print('digits test line'); "
                    f"p = pathlib.Path('{stage.report}'); p.parent.mkdir(parents=True); "
                    "p.write_text(json.dumps({'simclr.linear_probe.acc': 0.5}))"]
        return [sys.executable, "-c", f"print('{stage.name} {env} line'); raise SystemExit(3)"]

    monkeypatch.setattr(run_all, "kedro_command", fake_command)
    code = run_all.main(["--env=test", "--only", "afm,digits,ctc", "--stop-on-failure",
                         "--project", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    assert code == 1
    summary = json.loads((tmp_path / "out/run_all_summary.json").read_text())
    assert [(r["stage"], r["status"]) for r in summary["stages"]] == [
        ("digits", "ok"), ("ctc", "failed (exit 3)"), ("afm", "not run")]
    assert summary["stages"][0]["figures"] == {"simclr.linear_probe.acc": 0.5}
    assert summary["stages"][1]["log_tail"] == "ctc test line\n"
    assert summary["machine"]["cpu"] and summary["machine"]["python"]
    assert (tmp_path / "out/run_all_logs/digits.log").read_text() == "digits test line\n"
    assert "| **total** | | 1/3 ok |" in capsys.readouterr().out
