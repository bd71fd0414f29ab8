"""`kedro run --pipeline=afm --env=test` from the command line in a throwaway project copy:
the metrics report, the simulated afmformats files and the MLflow run."""

import json

import pytest
from mlflow.tracking import MlflowClient

from contrastive_signals.pipelines.afm.pipeline import VARIANTS
from tests.e2e.golden import assert_matches_golden
from tests.e2e.project import project_after_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def afm_project(tmp_path_factory):
    return project_after_run(tmp_path_factory.mktemp("afm_project"), "--pipeline=afm",
                             "--env=test")


def test_report_and_raw_files(afm_project):
    metrics = json.loads((afm_project / "data/08_reporting/afm_metrics.json").read_text())
    for name in ("afm.single_rupture.f1", "afm.macro_f1", "afm.find_peaks.single_rupture.f1",
                 *(f"afm.{variant}.macro_f1" for variant in VARIANTS)):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["afm.ingestion.curves"] == 160
    raw = afm_project / "data/01_raw/afm"
    assert sorted(p.name for p in raw.glob("*.h5")) == ["simulated-000.h5"]
    for plot in ("afm_examples.png", "afm_tsne.png", "afm_confusion.png"):
        assert (afm_project / "data/08_reporting/plots" / plot).stat().st_size > 1000


def test_mlflow_run_holds_metrics_plots_and_models(afm_project):
    client = MlflowClient(tracking_uri=f"sqlite:///{afm_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "afm" and run.info.status == "FINISHED"
    assert 0 <= run.data.metrics["afm.single_rupture.f1"] <= 1
    assert "afm.deriv_pre_5pc.macro_f1" in run.data.metrics
    assert run.data.params["afm.ingestion.on_bad_file"] == "raise"
    assert len(client.get_metric_history(run.info.run_id, "afm.deriv.pretrained.train_loss")) == 1
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/afm_examples.png", "plots/afm_tsne.png", "plots/afm_confusion.png"} <= plots
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert "models/afm.deriv_pre_100pc.encoder" in models


def test_report_matches_golden(afm_project):
    """Behaviour kept across refactors: the conf/test report equals the recorded one."""
    assert_matches_golden(afm_project, "afm")
