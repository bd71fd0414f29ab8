"""``processes: 2``: one command starts a helper process that joins the study, and runs the
final report's runs two at a time in fresh processes. The trials add up, the helper leaves the
parent run to its starter, and the parallel report equals the same report run in one process.
About 1.5 minutes on 2 cores."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from contrastive_signals.sweep import runner
from tests.e2e.project import make_project_copy, project_env
from tests.e2e.sweeps import SWEEP, project_study, start_sweep, wait_all

pytestmark = pytest.mark.slow
N_TRIALS = 4
REPORTED = "simclr.linear_probe_10pc.acc"
PAIR = {
    "pipeline": "__default__", "to_nodes": ["evaluation.simclr.evaluate"],
    "parameters": {"pretraining.simclr.method.temperature": {"low": 0.1, "high": 1.0,
                                                             "log": True}},
    "objective": {"metric": "simclr.linear_probe_10pc.val_acc"},
    "fixed": {"evaluation.probe_max_iter": 100},
    "n_trials": N_TRIALS, "startup_trials": 2, "processes": 2,
    "report": {"metrics": [REPORTED], "seed_parameters": ["pretraining.simclr.fit.seed"],
               "seeds": [0, 1]},
}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("sweep_processes"))
    (project / "conf" / "test" / "parameters_sweep_pair.yml").write_text(
        yaml.safe_dump({"sweep": {"pair": PAIR}}))
    log = project / "sweep.log"
    [summary] = wait_all([start_sweep(project, "run", "pair", "--env", "test", log=log)], [log])
    return project, summary


def test_the_helper_takes_trials_of_the_same_study(swept):
    project, summary = swept
    study = project_study(project, "pair")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(N_TRIALS))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    [helper_log] = (project / "data" / "10_sweeps" / "logs").glob("pair-*-1.log")
    text = helper_log.read_text()
    helper = json.loads(text[text.rindex("\n{\n") + 1:])
    assert helper["report"] is None  # the report is the starter's
    assert summary["ran_here"] + helper["ran_here"] == N_TRIALS
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("contrastive_signals").experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sweep.role") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(r.data.tags["sweep.trial"]) for r in children) == list(range(N_TRIALS))
    assert parent.info.status == "FINISHED"
    assert f"report.best.{REPORTED}" in parent.data.metrics


def test_the_parallel_report_equals_the_report_in_one_process(swept):
    project, summary = swept
    parallel = summary["report"]
    assert len(parallel["metrics"][REPORTED]["best"]["values"]) == 2
    result = subprocess.run([*SWEEP, "report", "pair", "--env", "test", "--processes", "1",
                             "--project", str(project)], cwd=project,
                            env={**project_env(project), **dict.fromkeys(  # as the pool had
                                runner.THREAD_VARIABLES, str(runner.threads_per_process(2)))},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    alone = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    assert alone["metrics"] == parallel["metrics"]
