"""The wav2vec part of `kedro run --pipeline=timeseries --env=test` (the session fixture
``timeseries_project``; `--pipeline=wav2vec` runs the same nodes alone): the metrics report,
the versioned wav2vec model and the MLflow run (pretraining curves, figures, plot)."""

import json

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


@pytest.fixture
def project(timeseries_project):
    return timeseries_project


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
    for curve in ("wav2vec.train_loss", "wav2vec.contrastive", "wav2vec.diversity",
                  "wav2vec.code_perplexity", "wav2vec.prob_perplexity", "wav2vec.temperature"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, curve)] == [0, 1]
    assert run.data.metrics["sleep.w2v_10pc.cer"] == pytest.approx(metrics["sleep.w2v_10pc.cer"])
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert "reports/wav2vec_metrics.json" in reports
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/wav2vec_label_efficiency.png" in plots
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert "models/wav2vec.encoder" in models
