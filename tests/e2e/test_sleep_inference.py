"""`sleep_inference` end to end on one small conf/test training run (module fixture): the
pure prediction equals the training evaluation on the same epochs, the pipeline's CSV and
EDF+ annotations, the registered model in a plain Python process, a real `mlflow models
serve` process with valid and invalid requests, and bad input files."""

from __future__ import annotations

import shutil
import subprocess
import sys

import mne
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
CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
# Two training epochs: the test needs a model, not a good one.
TRAIN = ("run", "--env=test", "--pipeline=sleep", "--params", "sleep.training.fit.epochs=2")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project after a small `sleep` run, its model registered as models:/sleep@champion,
    and one test night's PSG in the inference folder."""
    project = make_project_copy(tmp_path_factory.mktemp("sleep_inference"))
    kedro(project, *TRAIN)
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "register_model.py"),
                           "sleep"], cwd=project, env=project_env(project), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "models:/sleep@champion" in done.stdout
    return project


def _test_night(project):
    split = pd.read_json(project / "data/03_primary/sleep_split.json")
    return split["test"]["recordings"][0]


def _load_bundle(project):
    import mlflow

    from contrastive_signals.io.mlflow_models import load_task_model

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return load_task_model("models:/sleep@champion")


def test_pure_prediction_equals_the_evaluation(project):
    """Same feature steps (the reader's signals -> the epochs dataset) and same per-epoch
    stages as `sleep.predict_test_nights`."""
    from contrastive_signals.data.sleep_edf import read_sleep_edf_folder
    from contrastive_signals.inference.sleep import night_epochs, stage_epochs

    model = _load_bundle(project)
    name = _test_night(project)
    epochs = torch.load(project / "data/03_primary/sleep_epochs.pt", weights_only=True)
    recording = next(r for r in epochs["recordings"] if r["name"] == name)
    predictions = torch.load(project / "data/07_model_output/sleep_test_predictions.pt",
                             weights_only=True)
    expected = next(r for r in predictions["recordings"] if r["name"] == name)
    raw = next(r for r in read_sleep_edf_folder(project / "data/01_raw/sleep_edf",
                                                channels=CHANNELS, keep_wake_minutes=30.0)
               if r["name"] == name)
    computed = night_epochs(model.bundle, raw["signals"], raw["sampling_rate"])
    np.testing.assert_array_equal(computed[raw["labels"] >= 0], recording["epochs"].numpy())
    probs = stage_epochs(model.bundle, recording["epochs"], model=model.model)
    np.testing.assert_array_equal(probs.argmax(1), expected["predicted"].numpy())


def test_pipeline_pyfunc_and_endpoint_agree(project, tmp_path):
    from contrastive_signals.data.sleep_edf import read_psg

    name = _test_night(project)
    psg = next((project / "data/01_raw/sleep_edf").glob(f"{name}*-PSG.edf"))
    inbox = project / "data/01_raw/inference/sleep"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(psg, inbox / psg.name)
    kedro(project, "run", "--env=test", "--pipeline=sleep_inference",
          "--params", "inference.sleep.model=models:/sleep@champion")
    out = project / "data/07_model_output/inference/sleep"
    stem = psg.name.removesuffix(".edf")
    table = pd.read_csv(out / f"{stem}_stages.csv")
    assert list(table.columns) == ["onset", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_REM"]
    assert (out / f"{stem}_hypnogram.png").stat().st_size > 0
    annotations = mne.read_annotations(out / f"{stem}_stages-Annotations.edf")
    assert len(annotations) == len(table)
    assert [d.removeprefix("Sleep stage ") for d in annotations.description[:3]] == \
        [{"REM": "R", "N1": "1", "N2": "2", "N3": "3"}.get(s, s) for s in table["stage"][:3]]

    signals, rate = read_psg(psg, channels=CHANNELS)
    np.save(tmp_path / "night.npy", signals[None])
    report = pyfunc_predict(project, "models:/sleep@champion", tmp_path / "night.npy",
                            tmp_path / "out.npz", {"sampling_rate": rate})
    assert report == {"kedro_session_imported": False}
    pyfunc = np.load(tmp_path / "out.npz")
    probs = table[[c for c in table.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(pyfunc["probabilities"], probs, atol=1e-6)
    np.testing.assert_array_equal(pyfunc["onset"], table["onset"].to_numpy())

    port = free_port()
    with running("mlflow-serve", serve_command("models:/sleep@champion", port), port=port,
                 ready_path="/ping", cwd=project, log_path=tmp_path / "serve.log",
                 env=serve_env(project), timeout=180) as server:
        url = f"{server.url}/invocations"
        status, answer = post_json(url, {"inputs": signals[None, :, :30000].tolist(),
                                         "params": {"sampling_rate": rate}})
        assert status == 200, answer
        # The first 10 epochs alone are normalised on their own: compare with the model
        # on the same 10 epochs.
        short = _load_bundle(project).predict(None, signals[None, :, :30000],
                                              {"sampling_rate": rate})
        np.testing.assert_allclose(answer["predictions"]["probabilities"],
                                   short["probabilities"], atol=1e-6)
        bad = {"two channels": {"inputs": signals[None, :2, :3000].tolist()},
               "strings": {"inputs": [[["a"] * 3000] * 3]},
               "too short": {"inputs": signals[None, :, :100].tolist()},
               "NaN": {"inputs": np.full((1, 3, 3000), np.nan).tolist()},
               "no inputs": {"rows": []}}
        assert_refused(url, bad)


def test_bad_files_are_named(project):
    """The node itself (no Kedro start-up): one message naming both files and why."""
    from contrastive_signals.pipelines.inference.nodes import InferenceInputError, sleep_inference

    inbox = project / "data/01_raw/inference/bad"
    inbox.mkdir(parents=True)
    (inbox / "SC4991E0-PSG.edf").write_bytes(b"not an EDF file at all")
    info = mne.create_info(["EEG A", "EEG B", "EOG C"], 100.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).normal(0, 1e-5, (3, 6000)), info,
                          verbose="error")
    mne.export.export_raw(inbox / "SC4992E0-PSG.edf", raw, fmt="edf", verbose="error")
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    with pytest.raises(InferenceInputError) as failed:
        sleep_inference({"model": "latest", "input_folder": str(inbox),
                         "output_folder": str(project / "out")})
    message = str(failed.value)
    assert "2 unusable file(s)" in message
    assert "SC4991E0-PSG.edf" in message and "SC4992E0-PSG.edf" in message
    assert "missing channel(s) ['EEG Fpz-Cz', 'EEG Pz-Oz', 'EOG horizontal']" in message
    with pytest.raises(InferenceInputError, match="no EDF\\+ recordings in"):
        sleep_inference({"model": "latest", "input_folder": str(project / "nothing"),
                         "output_folder": str(project / "out")})
