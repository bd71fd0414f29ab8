"""Sweep files are checked before any trial: bad entries fail naming the entry, and no
objective may name a test-split figure (the leakage guard)."""

from __future__ import annotations

import copy

import pytest
import yaml
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

from contrastive_signals.config import ParameterError
from contrastive_signals.pipelines.parameter_checks import parameter_problems
from contrastive_signals.sweep import runner
from contrastive_signals.sweep.checks import nested, sweep_problems
from contrastive_signals.sweep.figures import (
    is_validation_figure,
    output_figures,
    pipeline_figures,
)
from contrastive_signals.sweep.spec import Objective, parse_sweep, parse_sweeps
from tests.e2e.project import PROJECT_ROOT, make_project_copy

bootstrap_project(PROJECT_ROOT)
PARAMETERS = {env: runner.Project(PROJECT_ROOT, env).config("parameters")
              for env in (None, "test")}
GOOD = {
    "pipeline": "__default__",
    "to_nodes": ["evaluation.simclr.evaluate"],
    "parameters": {"pretraining.simclr.method.temperature": {"low": 0.05, "high": 1.0,
                                                             "log": True},
                   "pretraining.simclr.fit.epochs": {"low": 10, "high": 40, "step": 10}},
    "objective": {"metric": "simclr.linear_probe_10pc.val_acc"},
    "pruning": {"metric": "simclr.val_knn_acc"},
}


def problems_of(entry: dict, env: str | None = None) -> list[str]:
    spec = parse_sweep("bad", entry)
    return sweep_problems(spec, PARAMETERS[env], pipelines)


def changed(path: str, value) -> dict:
    entry = copy.deepcopy(GOOD)
    node = entry
    *parents, leaf = path.split("/")
    for part in parents:
        node = node[part]
    node[leaf] = value
    return entry


@pytest.mark.parametrize("env", [None, "test"])
def test_shipped_sweeps_pass(env):
    sweeps = parse_sweeps(PARAMETERS[env]["sweep"])
    assert {"digits_simclr", "ctc_cnn"} <= set(sweeps)
    for spec in sweeps.values():
        assert sweep_problems(spec, PARAMETERS[env], pipelines) == []
    assert parameter_problems([("sweep", PARAMETERS[env]["sweep"])]) == []


def test_leakage_guard_every_shipped_objective_is_a_validation_figure():
    for env in (None, "test"):
        for spec in parse_sweeps(PARAMETERS[env]["sweep"]).values():
            assert is_validation_figure(spec.objective.metric), spec.name
            assert spec.pruning.metric is None or is_validation_figure(spec.pruning.metric)
            figures = pipeline_figures(spec.pipeline)
            assert spec.objective.metric not in figures.test
    with pytest.raises(ValueError, match="test-split figure"):
        Objective(metric="simclr.linear_probe_10pc.acc")


@pytest.mark.parametrize("metric", ["simclr.linear_probe_10pc.acc", "simclr.knn.acc",
                                    "ctc_cnn.cer", "supervised.test.acc"])
def test_an_objective_naming_a_test_figure_fails_naming_the_entry(metric):
    with pytest.raises(ParameterError, match=r"sweep\.bad\.objective: .*test-split"):
        parse_sweep("bad", changed("objective/metric", metric))


def test_declared_test_figures_are_not_validation_figures():
    for name in ("__default__", "ctc"):
        figures = pipeline_figures(name)
        assert figures.test and not any(is_validation_figure(f) for f in figures.test)
        assert all(is_validation_figure(f) for f in figures.objectives)


def test_unknown_parameter_path_names_the_entry():
    entry = changed("parameters/pretraining.simclr.method.temprature", {"low": 0.1, "high": 1.0})
    [problem] = problems_of(entry)
    assert problem.startswith("sweep.bad.parameters.pretraining.simclr.method.temprature: "
                              "unknown parameter path")


@pytest.mark.parametrize("space, message", [
    ({"low": 1.0, "high": 1.0}, "empty range"),
    ({"low": 2.0, "high": 1.0}, "empty range"),
    ({"choices": []}, "choices is empty"),
    ({"low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
])
def test_bad_ranges_name_the_entry(space, message):
    with pytest.raises(ParameterError, match=rf"sweep\.bad\.parameters\.pretraining\.simclr\."
                                             rf"method\.temperature: {message}"):
        parse_sweep("bad", changed("parameters/pretraining.simclr.method.temperature", space))


def test_a_range_end_the_project_refuses_fails_before_any_trial():
    entry = changed("parameters/pretraining.simclr.fit.epochs", {"low": 0, "high": 20})
    [problem] = problems_of(entry)
    assert problem.startswith("sweep.bad.parameters.pretraining.simclr.fit.epochs: value 0 "
                              "fails the project's check")
    assert "epochs must be >= 1" in problem
    entry = changed("parameters/pretraining.simclr.fit.epochs", {"low": 0.5, "high": 20.5})
    assert "is an integer" in problems_of(entry)[0]


def test_unknown_metrics_pipeline_and_node_name_the_entry():
    assert problems_of(changed("objective/metric", "simclr.linear_probe.val_f1"))[0].startswith(
        "sweep.bad.objective.metric: unknown metric 'simclr.linear_probe.val_f1'")
    assert problems_of(changed("pruning/metric", "simclr.val_nothing"))[0].startswith(
        "sweep.bad.pruning.metric: unknown per-epoch metric")
    assert problems_of(changed("pipeline", "nope"))[0].startswith(
        "sweep.bad.pipeline: unknown pipeline 'nope'")
    assert problems_of(changed("to_nodes", ["simclr.nope"]))[0].startswith(
        "sweep.bad.to_nodes: no node 'simclr.nope'")
    entry = {**GOOD, "report": {"metrics": ["simclr.bogus"], "seed_parameters": ["x.y"]}}
    problems = problems_of(entry)
    assert any(p.startswith("sweep.bad.report.metrics: unknown metric 'simclr.bogus'")
               for p in problems)
    assert any(p.startswith("sweep.bad.report.seed_parameters: unknown parameter path 'x.y'")
               for p in problems)


def test_bad_sweep_file_fails_before_any_trial(tmp_path):
    """Through the command: exit code 2, every problem named, no study and no MLflow run."""
    from contrastive_signals.sweep.__main__ import main

    project = make_project_copy(tmp_path)
    bad = changed("objective/metric", "simclr.nope.val_acc")
    bad["parameters"]["pretraining.simclr.method.tmperature"] = {"low": 0.1, "high": 0.5}
    (project / "conf" / "local" / "parameters_sweep.yml").write_text(
        yaml.safe_dump({"sweep": {"broken": bad}}))
    assert main(["run", "broken", "--project", str(project)]) == 2
    assert not (project / "data").exists() and not (project / "mlflow.db").exists()


def test_output_figures_use_stable_names():
    assert output_figures("evaluation.simclr.probe_scores",
                          {"metrics": {"knn.acc": 0.9, "linear_probe_10pc.val_acc": 0.8},
                           "labels": [1, 2]}) == {"simclr.knn.acc": 0.9,
                                                  "simclr.linear_probe_10pc.val_acc": 0.8}
    assert output_figures("ctc_cnn.test_scores", {"metrics": {"cer": 0.01}}) == {
        "ctc_cnn.cer": 0.01}
    assert output_figures("ctc_metrics", {"ctc_cnn.cer": 0.01}) == {"ctc_cnn.cer": 0.01}
    assert output_figures("simclr.history", {"train_loss": [1.0, 0.5]}) == {}


def test_nested_runtime_parameters():
    assert nested({"a.b.c": 1, "a.d": 2, "e": 3}) == {"a": {"b": {"c": 1}, "d": 2}, "e": 3}


def test_processes_below_one_fail_naming_the_entry():
    with pytest.raises(ParameterError, match=r"sweep\.bad: processes must be >= 1, got 0"):
        parse_sweep("bad", {**GOOD, "processes": 0})
    assert parse_sweep("ok", {**GOOD, "processes": 2}).processes == 2


def test_final_report_pairs_each_outcome_with_its_configuration_and_seed():
    """The report's runs go to ``run_all`` in one list (so that they may run in parallel); each
    outcome lands on its own configuration and seed, default rows from the project's values."""
    from optuna.trial import TrialState

    from contrastive_signals.sweep.reporting import final_report

    spec = parse_sweep("ok", {**GOOD, "report": {
        "metrics": ["simclr.linear_probe_10pc.acc"],
        "seed_parameters": ["pretraining.simclr.fit.seed"], "seeds": [3, 4]}})
    seen = []

    def run_all(assignments):
        seen.extend(assignments)
        # a figure that encodes the configuration (temperature set or not) and the seed
        return [runner.TrialOutcome(TrialState.COMPLETE, figures={
            "simclr.linear_probe_10pc.acc": values["pretraining.simclr.fit.seed"]
            + (0.5 if "pretraining.simclr.method.temperature" in values else 0.0)})
            for values in assignments]

    best = {"pretraining.simclr.method.temperature": 0.123}
    report = final_report(runner.Project(PROJECT_ROOT), spec, best, run_all)
    assert len(seen) == 4
    row = report["metrics"]["simclr.linear_probe_10pc.acc"]
    assert row["best"]["values"] == [3.5, 4.5] and row["default"]["values"] == [3.0, 4.0]
    assert row["difference"] == 0.5 and not report["best_is_default"]
    seen.clear()
    default = {"pretraining.simclr.method.temperature": 0.5}  # the project's own value
    report = final_report(runner.Project(PROJECT_ROOT), spec, default, run_all)
    assert len(seen) == 2 and report["best_is_default"]
    row = report["metrics"]["simclr.linear_probe_10pc.acc"]
    assert row["best"]["values"] == row["default"]["values"] == [3.5, 4.5]


@pytest.mark.parametrize("option", ["--processes", "--n-trials"])
def test_command_refuses_counts_below_one_naming_the_option(option, capsys):
    from contrastive_signals.sweep.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "tiny", option, "0"])
    assert exit_info.value.code == 2
    assert f"argument {option}: must be >= 1, got 0" in capsys.readouterr().err


def test_sweep_processes_share_the_cores_this_process_may_use(monkeypatch):
    """The share follows the affinity mask (a container or taskset limit), not the machine's
    core count: 4 allowed cores give 2 processes 2 threads each, never fewer than 1."""
    import os

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity mask on this OS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert [runner.threads_per_process(n) for n in (1, 2, 3, 8)] == [4, 2, 1, 1]
