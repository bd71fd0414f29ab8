"""`kedro run --pipeline=wav2vec --env=test` from the command line: the metrics report, the
versioned wav2vec model and the MLflow run (pretraining curves, figures, plot)."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.project import kedro, make_project_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("wav2vec_project"))
    kedro(project, "run", "--pipeline=wav2vec", "--env=test")
    return project


def test_report_model_and_mlflow_run(project):
    metrics = json.loads((project / "data/08_reporting/wav2vec_metrics.json").read_text())
    for name in ("sleep.w2v_10pc.cer", "sleep.scratch_10pc.cer", "sleep.w2v_10pc.macro_f1",
                 "sleep.scratch_10pc.macro_f1", "sleep.w2v_100pc.cer.std",
                 "sleep.scratch_100pc.macro_f1.std"):
        assert metrics[name] >= 0, name
    assert json.loads((project / "data/07_model_output/ts_sleep_metrics.json").read_text()) == metrics
    versions = list((project / "data/06_models/wav2vec_encoder.pt").iterdir())
    assert len(versions) == 1
    assert (project / "data/08_reporting/plots/wav2vec_label_efficiency.png").stat().st_size > 1000

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    for curve in ("wav2vec.loss", "wav2vec.contrastive", "wav2vec.diversity",
                  "wav2vec.code_perplexity", "wav2vec.prob_perplexity"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, curve)] == [0, 1]
    assert run.data.metrics["sleep.w2v_10pc.cer"] == pytest.approx(metrics["sleep.w2v_10pc.cer"])
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert "reports/wav2vec_metrics.json" in reports
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/wav2vec_label_efficiency.png" in plots
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert "models/wav2vec.encoder" in models
