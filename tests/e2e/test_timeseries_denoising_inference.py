"""`timeseries_inference` and `denoising_inference` end to end on one small conf/test training
run of both (module fixture: `timeseries_ucr` up to the gathering of the sets' evaluations and `denoising`
up to its evaluation, one `kedro run`; then one `kedro run` of both inference pipelines):
the predictions and reconstructions equal what the training evaluation scored, the logged
MLflow models in a plain Python process equal the pipelines, and bad files are named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from tests.e2e.project import kedro, make_project_copy, project_env

pytestmark = pytest.mark.slow
# One pretraining iteration / epoch each: the tests need models, not good ones.
TRAIN = ("run", "--env=test", "--pipelines=timeseries_ucr,denoising",
         "--to-nodes=timeseries.gather_ucr_sets,evaluate_denoising", "--params",
         ",".join(f"timeseries.ucr.methods.{m}.iterations=1" for m in ("ts2vec", "patch_tst",
                                                                       "ts2vec_decorrelated"))
         + "".join(f",denoising.{m}.fit.epochs=1,denoising.{m}.fit.warmup_epochs=0"
                   for m in ("hvae", "unet")))
# The timeseries model by its registered alias, the denoising one by registered version.
INFER = ("run", "--env=test", "--pipelines=timeseries_inference,denoising_inference",
         "--params", "inference.timeseries.model=models:/timeseries@champion,"
                     "inference.denoising.model=1")
SET, VIEWS, SINOGRAM_VIEWS = "ItalyPowerDemand", 8, 16
TS_OUT, CT_OUT = "data/07_model_output/inference/timeseries", "data/07_model_output/inference/denoising"


def _test_file():
    from contrastive_signals.data.ucr import bundled_ucr_root

    return bundled_ucr_root() / SET / f"{SET}_TEST.ts"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """After training (both models logged) and registering both (alias champion); the test
    split's .ts file, the test images at 8 views (.npy) and two test images' sinograms at
    16 views in the inference folders; after the inference run."""
    import mlflow

    from contrastive_signals.io.mlflow_models import register_best
    from contrastive_signals.signal.radon import SparseViewCT

    project = make_project_copy(tmp_path_factory.mktemp("ts_ct_inference"))
    kedro(project, *TRAIN)
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    assert register_best("timeseries")[1] == 1 and register_best("denoising")[1] == 1
    inbox = project / "data/01_raw/inference"
    (inbox / "timeseries").mkdir(parents=True)
    (inbox / "denoising").mkdir()
    shutil.copy(_test_file(), inbox / "timeseries" / _test_file().name)
    pairs = torch.load(project / "data/04_feature/denoising_pairs.pt", weights_only=True)
    np.save(inbox / "denoising/test_v8.npy", pairs["test"]["noisy"][VIEWS].numpy())
    np.save(inbox / "denoising/two_sinogram.npy",
            SparseViewCT(32, SINOGRAM_VIEWS).project(pairs["test"]["clean"][:2]).numpy())
    kedro(project, *INFER)
    return project


def test_timeseries_predictions_equal_the_evaluation(project):
    """On the test split: the evaluation's accuracies exactly, and its embeddings."""
    from contrastive_signals.data.ucr import available_datasets, bundled_ucr_root, load_ucr_dataset
    from contrastive_signals.models.registry import from_bundle
    from contrastive_signals.models.ts_encoders import encode_splits

    metrics = json.loads((project / "data/07_model_output/timeseries_ucr_metrics.json").read_text())
    table = pd.read_csv(project / TS_OUT / "predictions.csv", dtype={"label": str,
                                                                    "predicted_class": str,
                                                                    "probe_class": str})
    assert len(table) == 1029 and set(table["file"]) == {_test_file().name}
    assert (table["label"] == table["predicted_class"]).mean() == \
        metrics[f"ts.{SET}.ts2vec.svm.acc"]
    assert (table["label"] == table["probe_class"]).mean() == \
        metrics[f"ts.{SET}.ts2vec.linear.acc"]
    np.testing.assert_allclose(table[["p_1", "p_2"]].sum(axis=1), 1, atol=1e-5)

    folder = project / "data/06_models/timeseries_ucr_encoders.pt"
    encoders = torch.load(sorted(folder.glob("*/*.pt"))[-1], weights_only=True)
    data = load_ucr_dataset(SET, available_datasets([bundled_ucr_root()]), standardise="auto")
    (expected,) = encode_splits(from_bundle(encoders[SET]["ts2vec"], modality="series"),
                                {k: torch.from_numpy(data[k]) for k in ("x_test", "mask_test")},
                                ("test",), pooling="padded_window")
    embeddings = json.loads((project / TS_OUT / "embeddings.json").read_text())
    assert embeddings["model_uri"] == "models:/timeseries@champion"
    np.testing.assert_allclose(embeddings["embedding"], expected.numpy(), atol=1e-5)


def test_denoising_reconstructions_equal_the_evaluation(project):
    """The test images at 8 views: the evaluation's PSNR/SSIM of the U-Net and the HVAE's
    swap exactly (same donors); the sinograms back-projected as the pipeline does."""
    from contrastive_signals.metrics.image_quality import image_scores
    from contrastive_signals.signal.radon import SparseViewCT

    scores = json.loads((project / "data/07_model_output/denoising_scores.json").read_text())
    pairs = torch.load(project / "data/04_feature/denoising_pairs.pt", weights_only=True)
    clean = pairs["test"]["clean"]
    for name, method in (("unet", "unet"), ("hvae", "hvae_swap")):
        out = torch.from_numpy(np.load(project / CT_OUT / f"test_v8_{name}.npy"))
        got = image_scores(out, clean)
        assert got["psnr"] == scores[f"denoise.{method}.v{VIEWS}.psnr"], name
        assert got["ssim"] == scores[f"denoise.{method}.v{VIEWS}.ssim"], name
        assert (project / CT_OUT / f"test_v8_7_{name}.png").stat().st_size > 0
    fbp = np.load(project / CT_OUT / "two_sparse_view.npy")
    np.testing.assert_allclose(fbp, SparseViewCT(32, SINOGRAM_VIEWS).sparse_view(clean[:2]),
                               atol=1e-5)
    summary = json.loads((project / CT_OUT / "summary.json").read_text())
    assert summary["model_uri"] == "models:/denoising/1"
    assert summary["files"]["two_sinogram.npy"]["kind"] == "sinogram"
    assert (project / "data/08_reporting/inference/denoising_reconstructions.png").stat().st_size


# Runs in a fresh interpreter: both registered models with MLflow alone.
PYFUNC_SCRIPT = """
import json, sys
import numpy as np
import mlflow
series, images, out = sys.argv[1:4]
ts = mlflow.pyfunc.load_model("models:/timeseries@champion").predict(np.load(series))
ct = mlflow.pyfunc.load_model("models:/denoising/1").predict(np.load(images))
np.savez(out, embedding=ts["embedding"], predicted_class=ts["predicted_class"],
         probabilities=ts["probabilities"], unet=ct["unet"], hvae=ct["hvae"])
print(json.dumps({"kedro_session_imported": "kedro.framework.session" in sys.modules}))
"""


def test_pyfunc_models_in_a_plain_process_equal_the_pipelines(project, tmp_path):
    from contrastive_signals.data.ucr import read_ucr_file

    raw = read_ucr_file(_test_file())
    np.save(tmp_path / "series.npy", np.stack([s.T for s in raw.series]).astype(np.float32))
    inbox = project / "data/01_raw/inference/denoising/test_v8.npy"
    done = subprocess.run([sys.executable, "-c", PYFUNC_SCRIPT, str(tmp_path / "series.npy"),
                           str(inbox), str(tmp_path / "out.npz")], cwd=project,
                          env=project_env(project), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"kedro_session_imported": False}
    out = np.load(tmp_path / "out.npz")
    table = pd.read_csv(project / TS_OUT / "predictions.csv", dtype={"predicted_class": str})
    np.testing.assert_array_equal(out["predicted_class"], table["predicted_class"])
    np.testing.assert_allclose(out["probabilities"], table[["p_1", "p_2"]], atol=1e-6)
    embeddings = json.loads((project / TS_OUT / "embeddings.json").read_text())
    np.testing.assert_allclose(out["embedding"], embeddings["embedding"], atol=1e-6)
    for name in ("unet", "hvae"):
        np.testing.assert_array_equal(out[name], np.load(project / CT_OUT / f"test_v8_{name}.npy"))


def test_bad_files_are_named(project):
    """The nodes themselves (no Kedro start-up): one message naming every bad file and why;
    a file without labels is fine; a set the model was not trained on is refused."""
    import mlflow

    from contrastive_signals.inference import InputError
    from contrastive_signals.pipelines.inference.denoising import denoising_inference
    from contrastive_signals.pipelines.inference.nodes import InferenceInputError
    from contrastive_signals.pipelines.inference.timeseries import timeseries_inference

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    bad = project / "data/01_raw/inference/bad_ts"
    bad.mkdir()
    (bad / "garbage.ts").write_bytes(b"\x89PNG not a ts file")
    header = "@problemName x\n@univariate true\n@equalLength true\n@classLabel false\n@data\n"
    (bad / "short.ts").write_text(header + ",".join(["0.5"] * 20) + "\n")
    with pytest.raises(InferenceInputError) as failed:
        timeseries_inference({"dataset": SET, "model": "latest", "input_folder": str(bad)})
    message = str(failed.value)
    assert "2 unusable file(s)" in message and "garbage.ts: " in message
    assert "short.ts: series 1 has 20 steps; the ItalyPowerDemand model reads exactly 24" in message
    (bad / "garbage.ts").unlink()
    (bad / "short.ts").write_text(header + ",".join(["0.5"] * 24) + "\n")  # no labels: fine
    table, _ = timeseries_inference({"dataset": SET, "model": "latest", "input_folder": str(bad)})
    assert len(table) == 1 and table["label"].tolist() == [""]
    with pytest.raises(InputError, match=r"trained on \['ItalyPowerDemand'\], not on 'GunPoint'"):
        timeseries_inference({"dataset": "GunPoint", "model": "latest", "input_folder": str(bad)})

    bad = project / "data/01_raw/inference/bad_ct"
    bad.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(bad / "small.png")
    (bad / "broken.npy").write_bytes(b"not numpy")
    np.save(bad / "wide_sinogram.npy", np.zeros((8, 40), dtype=np.float32))
    with pytest.raises(InferenceInputError) as failed:
        denoising_inference({"model": "latest", "input_folder": str(bad),
                             "output_folder": str(project / "out")})
    message = str(failed.value)
    assert "3 unusable file(s)" in message and "broken.npy: unreadable" in message
    assert "small.png: images of 8x8 pixels; the denoisers were trained on 32x32" in message
    assert "wide_sinogram.npy: sinograms must be [V, 32]" in message
