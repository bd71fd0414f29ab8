"""`kedro run` from the command line in the small `test` environment, then the MLflow store."""

import json
import shutil

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.e2e.golden import assert_matches_golden
from tests.e2e.project import kedro

pytestmark = pytest.mark.slow

TRAINED = ("simclr", "supcon", "triplet_scratch", "triplet_pretrained", "supervised")


@pytest.fixture(scope="module")
def finished_run(browsed_project):
    """The session's one `kedro run --env=test` (shared with the browser tests)."""
    return browsed_project, None


def test_run_writes_metrics_report_and_models(finished_run):
    project, _ = finished_run
    metrics = json.loads((project / "data/08_reporting/evaluation_metrics.json").read_text())
    for encoder in ("raw", *TRAINED):
        for metric in ("linear_probe.acc", "knn.acc", "rvfl.acc", "recall_at_1", "recall_at_5", "map"):
            assert 0.0 <= metrics[f"{encoder}.{metric}"] <= 1.0
    assert 0.0 <= metrics["supervised.test.acc"] <= 1.0
    assert metrics["raw.linear_probe.acc"] > 0.7
    table = (project / "data/08_reporting/results_table.md").read_text()
    assert table.count("\n") >= 7 and "triplet_pretrained" in table
    for name in TRAINED:
        versions = list((project / f"data/06_models/{name}_encoder.pt").iterdir())
        assert len(versions) == 1 and (versions[0] / f"{name}_encoder.pt").is_file()
    for plot in ("simclr_tsne.png", "raw_probe_confusion.png", "training_curves.png"):
        assert (project / "data/08_reporting/plots" / plot).stat().st_size > 1000


def test_mlflow_store_holds_run_params_histories_and_artifacts(finished_run):
    project, _ = finished_run
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "__default__" and run.info.status == "FINISHED"
    configured = yaml.safe_load((project / "conf/base/parameters_pretraining.yml").read_text())
    assert run.data.params["pretraining.simclr.method.temperature"] == str(
        configured["pretraining"]["simclr"]["method"]["temperature"])
    assert run.data.params["triplet.method.sampling"] == "batch_hard"
    history = client.get_metric_history(run.info.run_id, "simclr.train_loss")
    assert [m.step for m in history] == [0, 1]  # conf/test trains SimCLR for 2 epochs
    assert len(client.get_metric_history(run.info.run_id, "supervised.val_acc")) == 2
    assert 0 <= run.data.metrics["simclr.linear_probe.acc"] <= 1
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"models", "plots", "reports", "histories"} <= top
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert "models/simclr.encoder" in models
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/results_table.md", "reports/evaluation_metrics.json"} <= reports


def test_second_run_keeps_first_model_versions(finished_run, tmp_path):
    project = tmp_path / "second_run"
    shutil.copytree(finished_run[0], project, ignore=shutil.ignore_patterns("build"))
    kedro(project, "run", "--env=test", "--pipeline=supervised")
    versions = list((project / "data/06_models/supervised_encoder.pt").iterdir())
    assert len(versions) == 2


def test_report_matches_golden(finished_run):
    """Behaviour kept across refactors: the conf/test report equals the recorded one."""
    assert_matches_golden(finished_run[0], "__default__")
