"""`kedro run --env=test` with SimCLR trained by 2 data-parallel ranks launched inside its node:
one MLflow run (the Kedro process alone logs), the per-epoch history, one saved model."""

import json

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.e2e.project import kedro, make_project_copy

pytestmark = pytest.mark.slow


def test_kedro_run_with_a_ddp_training_node(tmp_path):
    project = make_project_copy(tmp_path)
    result = kedro(project, "run", "--env=test", "--to-nodes=simclr.train_contrastive_encoder",
                   "--params=pretraining.simclr.fit.strategy=ddp,pretraining.simclr.fit.devices=2,"
                   "pretraining.simclr.fit.device=cpu")
    assert "data-parallel fit on 2" in result.stdout + result.stderr  # the node launched 2 ranks
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("contrastive_signals")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert run.data.params["pretraining.simclr.fit.strategy"] == "ddp"
    losses = [m.value for m in client.get_metric_history(run.info.run_id, "simclr.train_loss")]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)  # conf/test: 2 epochs
    history = json.loads((project / "data/07_model_output/simclr_history.json").read_text())
    assert history["train_loss"] == pytest.approx(losses)
    assert len(history["val_knn_acc"]) == 2
    versions = list((project / "data/06_models/simclr_encoder.pt").iterdir())
    assert len(versions) == 1
    bundle = torch.load(versions[0] / "simclr_encoder.pt", weights_only=True)
    assert bundle  # the trained encoder came back from rank 0 and was saved by the node
