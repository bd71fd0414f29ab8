"""The pieces of the Airflow tasks that need no Airflow (contrastive_signals.airflow_tasks,
hooks/orchestration.py); the DAG itself runs in tests/e2e/test_airflow.py."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from contrastive_signals.airflow_tasks import (
    PROJECT_PATH_ENV,
    close_parent_run,
    in_project,
    latest_tries,
    merge_load_versions,
    resolve_project,
)
from contrastive_signals.hooks.orchestration import (
    PARENT_RUN_ENV,
    RUN_NAME_ENV,
    RUN_TAGS_ENV,
    orchestrated_run_tags,
)


def test_load_versions_come_from_upstream_tasks_for_this_tasks_inputs_only():
    upstream = [{"simclr.encoder": "v1", "simclr.unused": "v1"}, None,
                {"supcon.encoder": "v2"}]
    assert merge_load_versions(upstream, {"simclr.encoder", "supcon.encoder", "digit_features"}) \
        == {"simclr.encoder": "v1", "supcon.encoder": "v2"}
    assert merge_load_versions([], {"a"}) == {}


def _run(task, try_number, start):
    return SimpleNamespace(data=SimpleNamespace(tags={"airflow.task_id": task,
                                                      "airflow.try_number": str(try_number)}),
                           info=SimpleNamespace(start_time=start))


def test_latest_tries_keep_each_tasks_last_try():
    first, retry, other = _run("simclr", 1, 10), _run("simclr", 2, 5), _run("supcon", 1, 3)
    untagged = SimpleNamespace(data=SimpleNamespace(tags={}), info=SimpleNamespace(start_time=1))
    assert latest_tries([retry, first, other, untagged]) == {"simclr": retry, "supcon": other}


def test_orchestrated_run_tags_from_the_environment():
    assert orchestrated_run_tags({}) == {}
    tags = orchestrated_run_tags({PARENT_RUN_ENV: "abc", RUN_NAME_ENV: "simclr",
                                  RUN_TAGS_ENV: json.dumps({"airflow.try_number": 2})})
    assert tags == {"mlflow.parentRunId": "abc", "mlflow.runName": "simclr",
                    "airflow.try_number": "2"}
    with pytest.raises(ValueError, match=RUN_TAGS_ENV):
        orchestrated_run_tags({RUN_TAGS_ENV: "[1, 2]"})


def test_project_folder_from_the_environment_or_the_baked_path(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.delenv(PROJECT_PATH_ENV, raising=False)
    assert resolve_project(tmp_path) == tmp_path.resolve()
    with pytest.raises(RuntimeError, match=PROJECT_PATH_ENV):
        resolve_project("")
    with pytest.raises(RuntimeError, match="no pyproject.toml"):
        resolve_project(tmp_path / "elsewhere")
    monkeypatch.setenv(PROJECT_PATH_ENV, str(tmp_path))
    assert resolve_project("/does/not/exist") == tmp_path.resolve()


def test_in_project_restores_the_working_directory_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_TEST_KEPT", "old")
    monkeypatch.delenv("CS_TEST_NEW", raising=False)
    before = os.getcwd()
    with in_project(tmp_path, {"CS_TEST_KEPT": "new", "CS_TEST_NEW": "x"}):
        assert os.getcwd() == str(tmp_path) and os.environ["CS_TEST_NEW"] == "x"
    assert os.getcwd() == before and os.environ["CS_TEST_KEPT"] == "old"
    assert "CS_TEST_NEW" not in os.environ


def _child(client, experiment_id, parent_id, task, try_number, status, metrics, params):
    run = client.create_run(experiment_id, run_name=task, tags={
        "mlflow.parentRunId": parent_id, "airflow.task_id": task,
        "airflow.try_number": str(try_number)})
    for key, values in metrics.items():
        client.log_batch(run.info.run_id, metrics=[
            Metric(key, v, 1000 + step, step) for step, v in enumerate(values)])
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, status=status)


@pytest.fixture
def store(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("e")
    parent = client.create_run(experiment_id, run_name="__default__").info.run_id
    return client, experiment_id, parent


def test_parent_gets_the_last_tries_metric_histories_and_params_and_finishes(store):
    client, experiment_id, parent = store
    _child(client, experiment_id, parent, "simclr", 1, "FAILED", {"simclr.train_loss": [9.0]}, {})
    _child(client, experiment_id, parent, "simclr", 2, "FINISHED",
           {"simclr.train_loss": [2.0, 1.5]}, {"evaluation.k": "5", "simclr.lr": "0.1"})
    _child(client, experiment_id, parent, "evaluation", 1, "FINISHED",
           {"simclr.linear_probe.acc": [0.9]}, {"evaluation.k": "5"})
    statuses = close_parent_run(client, experiment_id, parent, ["simclr", "evaluation"])
    assert statuses == {"simclr": "FINISHED", "evaluation": "FINISHED"}
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.tags["airflow.tasks_failed"] == "-"
    assert run.data.metrics == {"simclr.train_loss": 1.5, "simclr.linear_probe.acc": 0.9}
    history = client.get_metric_history(parent, "simclr.train_loss")
    assert [(m.step, m.value) for m in history] == [(0, 2.0), (1, 1.5)]  # not the failed try
    assert run.data.params == {"evaluation.k": "5", "simclr.lr": "0.1"}


def test_parent_fails_when_a_task_failed_or_never_ran(store):
    client, experiment_id, parent = store
    _child(client, experiment_id, parent, "simclr", 1, "FAILED", {"simclr.train_loss": [9.0]}, {})
    _child(client, experiment_id, parent, "supcon", 1, "FINISHED", {"supcon.train_loss": [1.0]}, {})
    statuses = close_parent_run(client, experiment_id, parent, ["simclr", "supcon", "evaluation"])
    assert statuses == {"simclr": "FAILED", "supcon": "FINISHED", "evaluation": "MISSING"}
    run = client.get_run(parent)
    assert run.info.status == "FAILED"
    assert run.data.tags["airflow.tasks_failed"] == "evaluation,simclr"
    assert run.data.metrics == {"supcon.train_loss": 1.0}
