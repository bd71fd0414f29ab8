"""`kedro run --pipeline=generative_with_digits --env=test` in a throwaway project copy: the
digits prerequisites (ingestion, features, SimCLR, supervised CNN), then the DDPM and the GAN,
their report, figures and MLflow run."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.project import project_after_run

pytestmark = pytest.mark.slow

SPACES = ("supervised", "simclr", "pixels")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return project_after_run(tmp_path_factory.mktemp("generative_project"),
                             "--pipeline=generative_with_digits", "--env=test")


def test_report_has_the_stable_metric_names(project):
    metrics = json.loads((project / "data/08_reporting/generative_metrics.json").read_text())
    for name in ("ddpm", "gan", "real_split"):
        for space in SPACES:
            assert metrics[f"gen.{name}.fd_{space}"] >= 0
            assert 0 <= metrics[f"gen.{name}.precision_{space}"] <= 1
            assert 0 <= metrics[f"gen.{name}.recall_{space}"] <= 1
        assert 0 <= metrics[f"gen.{name}.cond_acc"] <= 1
    for kind in ("ddpm", "gan"):
        assert metrics[f"gen.{kind}.memorisation"] > 0
    for model in ("probe", "cnn"):
        for setting in ("real", "real_plus_ddpm"):
            assert 0 <= metrics[f"gen.synthetic.{model}.{setting}_acc_mean"] <= 1
            assert metrics[f"gen.synthetic.{model}.{setting}_acc_std"] >= 0


def test_figures_and_mlflow_run(project):
    for name in ("ddpm_samples", "gan_samples", "ddpm_trajectory", "training_curves"):
        assert (project / f"data/08_reporting/plots/generative_{name}.png").stat().st_size > 1000
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert "gen.ddpm.fd_supervised" in run.data.metrics
    assert client.get_metric_history(run.info.run_id, "gen.gan.train_loss")
    for player in ("d_loss", "g_loss"):  # alternating steps: each player's loss per epoch
        assert len(client.get_metric_history(run.info.run_id, f"gen.gan.{player}")) == 1
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/generative_ddpm_trajectory.png" in plots
