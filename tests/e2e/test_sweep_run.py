"""A tiny sweep end to end (conf/test ``tiny``: enqueued trials, the width-1 embedding pruned
after its first epoch), run by two processes on one study: the study and the MLflow store
agree, no trial runs twice, and the best trial's parameters reproduce its objective when
rerun alone. About 1.5-2 minutes on 2 busy cores."""

from __future__ import annotations

import json
import subprocess

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.e2e.project import make_project_copy, project_env
from tests.e2e.sweeps import SWEEP, project_study, start_sweep, wait_all

pytestmark = pytest.mark.slow
N_TRIALS = 4  # 3 enqueued (one of them pruned) + 1 sampled by TPE


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("sweep"))
    logs = [project / f"sweep{i}.log" for i in range(2)]
    processes = [start_sweep(project, "run", "tiny", "--env", "test", "--n-trials",
                             str(N_TRIALS), log=log) for log in logs]
    return project, wait_all(processes, logs)


def test_two_processes_share_the_study_without_running_a_trial_twice(swept):
    project, summaries = swept
    study = project_study(project, "tiny")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(N_TRIALS))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert sum(s["ran_here"] for s in summaries) == N_TRIALS
    assert all(s["ran_here"] >= 1 for s in summaries), summaries
    width_one = [t for t in trials
                 if t.params["pretraining.simclr.encoder.config.embedding_dim"] == 1]
    assert width_one and all(t.state == TrialState.PRUNED for t in width_one)
    assert all(t.intermediate_values for t in trials)  # every trial reported epochs


def test_parent_and_child_runs_match_the_study(swept):
    project, _ = swept
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("contrastive_signals")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sweep.role") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 1 + N_TRIALS == 1 + len(children)  # no stray run of kedro-mlflow
    study = project_study(project, "tiny")
    by_number = {t.number: t for t in study.get_trials()}
    assert sorted(int(r.data.tags["sweep.trial"]) for r in children) == sorted(by_number)
    for run in children:
        trial = by_number[int(run.data.tags["sweep.trial"])]
        assert set(run.data.params) == {"pretraining.simclr.method.temperature",
                                        "pretraining.simclr.encoder.config.embedding_dim"}
        assert float(run.data.params["pretraining.simclr.method.temperature"]) == \
            trial.params["pretraining.simclr.method.temperature"]
        assert run.data.tags["sweep.state"] == trial.state.name
        assert not any(is_test for is_test in (
            name.endswith(".acc") and ".val_" not in name for name in run.data.metrics))
        if trial.state == TrialState.COMPLETE:
            assert run.info.status == "FINISHED"
            assert run.data.metrics["simclr.linear_probe_10pc.val_acc"] == trial.value
            assert run.data.metrics["objective"] == trial.value
        else:
            assert run.info.status == "KILLED"
    best = study.best_trial
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert {"optuna/optimization_history.png", "optuna/parallel_coordinate.png"} <= artifacts
    report = json.loads((project / "data/08_reporting/sweep_tiny.json").read_text())
    row = report["metrics"]["simclr.linear_probe_10pc.acc"]
    assert len(row["best"]["values"]) == len(row["default"]["values"]) == 1


def test_best_trial_reproduces_its_objective_alone(swept):
    project, _ = swept
    result = subprocess.run([*SWEEP, "best", "tiny", "--env", "test", "--project", str(project)],
                            cwd=project, env={**project_env(project), "TORCH_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rerun = json.loads(result.stdout[result.stdout.index("{"):])
    assert rerun["state"] == "COMPLETE"
    assert rerun["rerun_value"] == rerun["study_value"]
