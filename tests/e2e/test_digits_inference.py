"""`digits_inference` end to end on one small conf/test run up to one encoder's evaluation
(module fixture): the inference embeddings equal the evaluation's, the pipeline's table,
the logged model in a plain Python process, a real `mlflow models serve` process with
valid and invalid requests, and bad input files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from tests.e2e.inference_helpers import (
    assert_refused,
    post_json,
    pyfunc_predict,
    serve_command,
    serve_env,
)
from tests.e2e.project import PROJECT_ROOT, kedro, make_project_copy, project_env
from tests.e2e.servers import free_port, running

pytestmark = pytest.mark.slow
ENCODER = "triplet_scratch"
TRAIN = ("run", "--env=test", f"--to-nodes=evaluation.{ENCODER}.evaluate",
         "--params", f"inference.digits.encoder={ENCODER}")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project after ingestion, features, the triplet_scratch encoder and its evaluation
    (its model logged), registered as models:/digits@champion; five test digits as .npy and
    one as .png in the inference folder."""
    project = make_project_copy(tmp_path_factory.mktemp("digits_inference"))
    kedro(project, *TRAIN)
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "register_model.py"),
                           "digits"], cwd=project, env=project_env(project),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from PIL import Image

    splits = torch.load(project / "data/03_primary/digit_splits.pt", weights_only=True)
    inbox = project / "data/01_raw/inference/digits"
    inbox.mkdir(parents=True)
    np.save(inbox / "a.npy", splits["test"]["images"][:5, 0].numpy())
    pixels = (splits["test"]["images"][5, 0].numpy() * 255).round().astype("uint8")
    Image.fromarray(pixels).save(inbox / "b.png")
    kedro(project, "run", "--env=test", "--pipeline=digits_inference",
          "--params", "inference.digits.model=models:/digits@champion")
    return project


def _evaluation_embeddings(project):
    """The test split's embeddings as the evaluation computes them (same encoder file)."""
    from contrastive_signals.models.registry import embed, from_bundle

    folder = project / f"data/06_models/{ENCODER}_encoder.pt"
    bundle = torch.load(sorted(folder.glob("*/*.pt"))[-1], weights_only=True)
    features = torch.load(project / "data/04_feature/digit_features.pt", weights_only=True)
    return embed(from_bundle(bundle), features["test"]["images"]).numpy()


def test_pipeline_embeddings_equal_the_evaluation(project):
    embeddings = json.loads((project / "data/07_model_output/inference/digits/"
                             "embeddings.json").read_text())
    assert embeddings["files"] == ["a.npy"] * 5 + ["b.png"]
    expected = _evaluation_embeddings(project)[:6]
    got = np.asarray(embeddings["embedding"])
    np.testing.assert_allclose(got[:5], expected[:5], rtol=0, atol=1e-6)
    # The png holds 8-bit pixels: equal up to that rounding.
    np.testing.assert_allclose(got[5], expected[5], atol=0.05)
    table = pd.read_csv(project / "data/07_model_output/inference/digits/predictions.csv")
    assert len(table) == 6 and table["neighbour_1_distance"].between(0, 2).all()
    assert (project / "data/08_reporting/inference/digits_neighbours.png").stat().st_size > 0


def test_pyfunc_and_endpoint_equal_the_pipeline(project, tmp_path):
    splits = torch.load(project / "data/03_primary/digit_splits.pt", weights_only=True)
    images = splits["test"]["images"][:5, 0].numpy()
    np.save(tmp_path / "x.npy", images)
    report = pyfunc_predict(project, "models:/digits@champion", tmp_path / "x.npy",
                            tmp_path / "out.npz")
    assert report == {"kedro_session_imported": False}
    pyfunc = np.load(tmp_path / "out.npz")
    table = pd.read_csv(project / "data/07_model_output/inference/digits/predictions.csv")
    np.testing.assert_array_equal(pyfunc["predicted_label"], table["predicted_label"][:5])
    np.testing.assert_array_equal(pyfunc["neighbour_index"][:, 0],
                                  table["neighbour_1_train_row"][:5])
    port = free_port()
    with running("mlflow-serve", serve_command("models:/digits@champion", port), port=port,
                 ready_path="/ping", cwd=project, log_path=tmp_path / "serve.log",
                 env=serve_env(project), timeout=180) as server:
        url = f"{server.url}/invocations"
        status, answer = post_json(url, {"inputs": images.tolist()})
        assert status == 200, answer
        np.testing.assert_allclose(answer["predictions"]["embedding"], pyfunc["embedding"],
                                   atol=1e-6)
        bad = {"wrong size": {"inputs": np.zeros((1, 27, 28)).tolist()},
               "strings": {"inputs": [[["x"] * 28] * 28]},
               "out of range": {"inputs": (images * 255).tolist()},
               "no inputs": {"rows": []}}
        assert_refused(url, bad)


def test_bad_files_are_named(project):
    """The node itself (no Kedro start-up): one message naming both files and why."""
    from contrastive_signals.pipelines.inference.nodes import InferenceInputError, digits_inference

    inbox = project / "data/01_raw/inference/bad_digits"
    inbox.mkdir(parents=True)
    (inbox / "broken.png").write_bytes(b"no image")
    np.save(inbox / "small.npy", np.zeros((2, 8, 8), dtype=np.float32))
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    with pytest.raises(InferenceInputError) as failed:
        digits_inference({"model": "latest", "input_folder": str(inbox)})
    message = str(failed.value)
    assert "2 unusable file(s)" in message
    assert "broken.png: unreadable" in message and "small.npy: expected images of shape" in message
