"""`kedro run --pipeline=denoising --env=test` from the command line in a throwaway project
copy, then the metrics report, the figures, the versioned models and the MLflow store."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.golden import assert_matches_golden
from tests.e2e.project import project_after_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return project_after_run(tmp_path_factory.mktemp("denoising_project"), "--pipeline=denoising",
                             "--env=test")


def test_run_writes_report_figures_and_models(project):
    metrics = json.loads((project / "data/08_reporting/denoising_metrics.json").read_text())
    for method in ("fbp", "tv", "unet", "hvae_swap", "hvae_own"):
        for v in (8, 16):  # conf/test views
            assert metrics[f"denoise.{method}.v{v}.psnr"] > 0
            assert -1 <= metrics[f"denoise.{method}.v{v}.ssim"] <= 1
    assert {"denoise.hvae_inject.v16.psnr", "denoise.clean_as_noisy.v16.psnr"} <= set(metrics)
    for name in ("ellipses", "digits", "skimage", "latent_parts"):
        assert (project / f"data/08_reporting/plots/denoising_{name}.png").stat().st_size > 1000
    for model in ("denoising_hvae", "denoising_unet"):
        versions = list((project / f"data/06_models/{model}_encoder.pt").iterdir())
        assert len(versions) == 1


def test_mlflow_run_holds_metrics_histories_and_artifacts(project):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["denoise.fbp.v16.psnr"] > 0
    assert "denoise.hvae_swap.v8.ssim" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "denoising_hvae.val_psnr")) == 2
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"models", "plots", "reports"} <= top
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/denoising_ellipses.png" in plots
    assert run.data.params["denoising.noise.views"] == "[8, 16]"


def test_report_matches_golden(project):
    """Behaviour kept across refactors: the conf/test report equals the recorded one."""
    assert_matches_golden(project, "denoising")
