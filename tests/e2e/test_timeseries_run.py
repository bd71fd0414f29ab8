"""`kedro run --pipeline=timeseries --env=test` from the command line in a throwaway project
copy (the session fixture ``timeseries_project``): the flat metrics report with the sleep
label-efficiency figures joined, the results table, the t-SNE plot and the MLflow run."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.golden import assert_matches_golden
from tests.e2e.project import kedro, make_project_copy

pytestmark = pytest.mark.slow


@pytest.fixture
def ts_project(timeseries_project):
    return timeseries_project


def test_report_table_and_plot(ts_project):
    metrics = json.loads((ts_project / "data/08_reporting/timeseries_metrics.json").read_text())
    for name in ("ts.ItalyPowerDemand.ts2vec.svm.acc", "ts.ItalyPowerDemand.ts2vec.linear.acc",
                 "ts.ItalyPowerDemand.raw_1nn.acc", "ts.ItalyPowerDemand.best.svm.acc",
                 "mnist1d.simclr.linear.acc", "mnist1d.supervised.acc",
                 "sleep.w2v_10pc.macro_f1", "sleep.scratch_10pc.macro_f1"):
        assert 0.0 <= metrics[name] <= 1.0, name
    sleep = json.loads((ts_project / "data/07_model_output/ts_sleep_metrics.json").read_text())
    assert {k: metrics[k] for k in sleep} == sleep
    assert metrics["sleep.w2v_10pc.cer"] >= 0 and metrics["sleep.scratch_10pc.cer"] >= 0
    assert metrics["ts.ItalyPowerDemand.ts2vec.pretrain_seconds"] > 0
    table = (ts_project / "data/08_reporting/timeseries_results.md").read_text()
    assert "ItalyPowerDemand / ts2vec" in table and "TS2Vec 0.925-0.960" in table
    plot = ts_project / "data/08_reporting/plots/timeseries_ucr_tsne.png"
    assert plot.stat().st_size > 1000


def test_mlflow_run_holds_metrics_and_models(ts_project):
    client = MlflowClient(tracking_uri=f"sqlite:///{ts_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert 0 <= run.data.metrics["ts.ItalyPowerDemand.best.svm.acc"] <= 1
    assert 0 <= run.data.metrics["mnist1d.simclr.linear.acc"] <= 1
    history = client.get_metric_history(run.info.run_id, "ts.ItalyPowerDemand.ts2vec.train_loss")
    assert len(history) >= 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/timeseries_metrics.json", "reports/timeseries_results.md"} <= artifacts
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert any("timeseries.ucr_encoders" in path for path in models)


def test_report_matches_golden(ts_project):
    """Behaviour kept across refactors: the conf/test report equals the recorded one."""
    assert_matches_golden(ts_project, "timeseries")


def test_runtime_params_choose_the_sets_namespaces(tmp_path):
    """`--params "timeseries.ucr.datasets=[GunPoint]"` builds the namespace `ucr_GunPoint`
    (whatever conf/test lists): its loading node exists and runs."""
    project = make_project_copy(tmp_path)
    result = kedro(project, "run", "--env=test", "--pipeline=timeseries_ucr",
                   "--to-nodes=ucr_GunPoint.load_ucr_set",
                   "--params", "timeseries.ucr.datasets=[GunPoint]")
    assert "ucr_GunPoint.load_ucr_set" in result.stdout + result.stderr
    assert (project / "data/03_primary/ucr/GunPoint_data.pkl").is_file()
    assert not (project / "data/03_primary/ucr/ItalyPowerDemand_data.pkl").exists()
