"""MLflow refuses the artifacts after training (issue 14): the trained model is in data/, the
message names it, the run is FAILED, and Kedro counts the training node as done (it does not
say "No nodes ran")."""

from __future__ import annotations

import subprocess

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.project import KEDRO, make_project_copy, project_env

pytestmark = pytest.mark.slow

TRAIN = "simclr.train_contrastive_encoder"


def test_an_artifact_store_failure_after_training_keeps_and_names_the_model(tmp_path):
    project = make_project_copy(tmp_path)
    (project / "not_a_folder").write_text("a file where MLflow wants a folder\n")
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    client.create_experiment("contrastive_signals",
                             artifact_location=(project / "not_a_folder" / "artifacts").as_uri())
    result = subprocess.run(
        [str(KEDRO), "run", "--env=test", "--to-nodes=evaluation.simclr.embed",
         "--params=pretraining.simclr.fit.epochs=1"],
        cwd=project, env={**project_env(project), "COLUMNS": "250"}, capture_output=True,
        text=True, timeout=600)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    models = list((project / "data/06_models/simclr_encoder.pt").glob("*/simclr_encoder.pt"))
    assert len(models) == 1 and models[0].stat().st_size > 1000
    assert f"model simclr.encoder at {models[0].relative_to(project)}" in output, output[-3000:]
    assert "Saved locally, not in MLflow" in output
    assert "data/07_model_output/simclr_history.json" in output  # the history, published
    assert (project / "data/07_model_output/simclr_history.json").is_file()
    assert "No nodes ran" not in output
    assert f"Completed node: {TRAIN}" in output
    [run] = client.search_runs([client.get_experiment_by_name("contrastive_signals").experiment_id])
    assert run.info.status == "FAILED"
