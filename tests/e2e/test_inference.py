"""The inference pipelines of the digits encoder, the sleep stager and the AFM classifier end
to end, on ONE small conf/test training run (the three tasks' training up to their
evaluation, in one `kedro run --pipelines=...`), their logged models registered in one call,
then, side by side: ONE `kedro run` of the three inference pipelines, ONE plain Python
subprocess loading every model with MLflow alone, and one real `mlflow models serve` process
per served task (digits; sleep as an EDF file). Checks: the inference outputs equal what the
training evaluation computes for the same items, the pyfunc models and endpoints equal the
pipelines, and bad files and bad requests are refused with a message naming them."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import mlflow
import mne
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException

from tests.e2e.inference_helpers import (
    assert_refused,
    post_json,
    pyfunc_predict,
    register,
    serve_command,
    serve_env,
)
from tests.e2e.project import kedro, make_project_copy
from tests.e2e.servers import free_port, start_server, stop_server

pytestmark = pytest.mark.slow
ENCODER = "triplet_scratch"
AFM_VARIANT = "deriv_pre_100pc"
CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
KINDS = ("digits", "sleep", "sleep_edf", "afm")
SERVED = ("digits", "sleep_edf")
# The three trainings up to their evaluations; two sleep epochs: a model, not a good one.
TRAIN = ("run", "--env=test", "--pipelines=__default__,sleep,afm",
         f"--to-nodes=evaluation.{ENCODER}.evaluate,sleep.evaluate,afm_evaluate_{AFM_VARIANT}",
         "--params", f"inference.digits.encoder={ENCODER},sleep.training.fit.epochs=2")
INFER = ("run", "--env=test", "--pipelines=digits_inference,sleep_inference,afm_inference",
         "--params", ",".join(f"inference.{task}.model=models:/{task}@champion"
                              for task in ("digits", "sleep", "afm")))
OUT = "data/07_model_output/inference"


def _latest(folder):
    """The newest version's file of a versioned dataset folder."""
    return sorted(folder.glob("*/*"))[-1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project after the training run, its four models registered as
    ``models:/<kind>@champion``, and new inputs in the inference folders: five test digits
    as .npy and one as .png, one test night's PSG, the simulated AFM file; plus the pyfunc
    inputs of the same items under ``requests/``."""
    from PIL import Image

    from contrastive_signals.data.sleep_edf import read_psg

    project = make_project_copy(tmp_path_factory.mktemp("inference"))
    kedro(project, *TRAIN)
    register(project, *KINDS)
    inbox, requests = project / "data/01_raw/inference", project / "requests"
    for folder in ("digits", "sleep", "afm", ""):
        (inbox / folder if folder else requests).mkdir(parents=True, exist_ok=True)
    digits = torch.load(project / "data/03_primary/digit_splits.pt",
                        weights_only=True)["test"]["images"][:6, 0].numpy()
    np.save(inbox / "digits/a.npy", digits[:5])
    Image.fromarray((digits[5] * 255).round().astype("uint8")).save(inbox / "digits/b.png")
    np.save(requests / "digits.npy", digits[:5])
    psg = _test_psg(project)
    shutil.copy(psg, inbox / "sleep" / psg.name)
    signals, rate = read_psg(psg, channels=CHANNELS)
    np.save(requests / "night.npy", signals[None])
    (requests / "night_edf.json").write_text(json.dumps(
        {"edf_base64": [base64.b64encode(psg.read_bytes()).decode("ascii")]}))
    shutil.copy(project / "data/01_raw/afm/simulated-000.h5", inbox / "afm")
    curves = torch.load(project / "data/03_primary/afm_curves.pt", weights_only=True)
    np.save(requests / "curves.npy", curves["force"][:, 0].numpy())
    return project


def _test_night(project) -> str:
    return pd.read_json(project / "data/03_primary/sleep_split.json")["test"]["recordings"][0]


def _test_psg(project):
    return next((project / "data/01_raw/sleep_edf").glob(f"{_test_night(project)}*-PSG.edf"))


@pytest.fixture(scope="module")
def run(project):
    """Side by side: the inference pipelines' `kedro run`, the pyfunc subprocess and the
    servers' start-up. Yields ``{"pyfunc": its report, "servers": {kind: Server}}``; the
    servers' process groups are stopped at the end of the module."""
    requests = project / "requests"
    rate = float(mne.io.read_raw_edf(_test_psg(project), verbose="error").info["sfreq"])
    jobs = [{"uri": "models:/digits@champion", "input": str(requests / "digits.npy"),
             "output": str(requests / "digits_out.npz")},
            {"uri": "models:/sleep@champion", "input": str(requests / "night.npy"),
             "output": str(requests / "night_out.npz"), "params": {"sampling_rate": rate}},
            {"uri": "models:/sleep_edf@champion", "input": str(requests / "night_edf.json"),
             "output": str(requests / "night_edf_out.csv")},
            {"uri": "models:/afm@champion", "input": str(requests / "curves.npy"),
             "output": str(requests / "curves_out.npz")}]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(2 + len(SERVED)) as pool:
        starting = {}
        for kind in SERVED:
            port = free_port()
            starting[kind] = pool.submit(
                start_server, f"mlflow-serve-{kind}", serve_command(f"models:/{kind}@champion",
                                                                    port),
                port=port, ready_path="/ping", cwd=project, log_path=project / f"{kind}.log",
                env=serve_env(project), timeout=300)
        inference = pool.submit(kedro, project, *INFER)
        pyfunc = pool.submit(pyfunc_predict, project, jobs, requests / "jobs.json")
        servers = {}
        for kind, future in starting.items():
            with contextlib.suppress(Exception):  # a failed start is raised below
                servers[kind] = future.result()
                stack.callback(stop_server, servers[kind])
        report = pyfunc.result()
        inference.result()
        for future in starting.values():
            future.result()
        yield {"pyfunc": report, "servers": servers}


@pytest.fixture(scope="module")
def store(project):
    """This project's MLflow store as the test process's tracking URI (restored after)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    yield project
    mlflow.set_tracking_uri(previous)


def test_the_training_run_logged_every_kind_with_its_metrics(store):
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    models = mlflow.search_logged_models(experiment_ids=experiments, output_format="list")
    metrics = {m.tags["contrastive_signals.task"]: {x.key for x in m.metrics} for m in models}
    assert sorted(metrics) == sorted(KINDS)
    assert "sleep.kappa" in metrics["sleep"] and "sleep.kappa" in metrics["sleep_edf"]
    assert f"afm.{AFM_VARIANT}.macro_f1" in metrics["afm"]
    assert f"{ENCODER}.knn.acc" in metrics["digits"]


def test_the_pyfunc_process_never_imports_kedro(run):
    assert run["pyfunc"] == {"kedro_session_imported": False}


# --------------------------------------------------------------------------------- digits


def test_digits_pipeline_embeddings_equal_the_evaluation(project, run):
    from contrastive_signals.models.registry import embed, from_bundle

    bundle = torch.load(_latest(project / f"data/06_models/{ENCODER}_encoder.pt"),
                        weights_only=True)
    features = torch.load(project / "data/04_feature/digit_features.pt", weights_only=True)
    expected = embed(from_bundle(bundle), features["test"]["images"][:6]).numpy()
    embeddings = json.loads((project / OUT / "digits/embeddings.json").read_text())
    assert embeddings["files"] == ["a.npy"] * 5 + ["b.png"]
    got = np.asarray(embeddings["embedding"])
    np.testing.assert_allclose(got[:5], expected[:5], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[5], expected[5], atol=0.05)  # 8-bit pixels of the png
    table = pd.read_csv(project / OUT / "digits/predictions.csv")
    assert len(table) == 6 and table["neighbour_1_distance"].between(0, 2).all()
    assert (project / "data/08_reporting/inference/digits_neighbours.png").stat().st_size > 0


def test_digits_pyfunc_and_endpoint_equal_the_pipeline(project, run):
    pyfunc = np.load(project / "requests/digits_out.npz")
    table = pd.read_csv(project / OUT / "digits/predictions.csv")
    np.testing.assert_array_equal(pyfunc["predicted_label"], table["predicted_label"][:5])
    np.testing.assert_array_equal(pyfunc["neighbour_index"][:, 0],
                                  table["neighbour_1_train_row"][:5])
    url = f"{run['servers']['digits'].url}/invocations"
    images = np.load(project / "requests/digits.npy")
    status, answer = post_json(url, {"inputs": images.tolist()})
    assert status == 200, answer
    np.testing.assert_allclose(answer["predictions"]["embedding"], pyfunc["embedding"], atol=1e-6)
    assert_refused(url, {"wrong size": {"inputs": np.zeros((1, 27, 28)).tolist()},
                         "strings": {"inputs": [[["x"] * 28] * 28]},
                         "out of range": {"inputs": (images * 255).tolist()},
                         "no inputs": {"rows": []}})


def test_digits_bad_files_are_named(store):
    """The node itself (no Kedro start-up): one message naming both files and why."""
    from contrastive_signals.pipelines.inference.nodes import InferenceInputError, digits_inference

    inbox = store / "data/01_raw/inference/bad_digits"
    inbox.mkdir(parents=True)
    (inbox / "broken.png").write_bytes(b"no image")
    np.save(inbox / "small.npy", np.zeros((2, 8, 8), dtype=np.float32))
    with pytest.raises(InferenceInputError) as failed:
        digits_inference({"model": "latest", "input_folder": str(inbox)})
    message = str(failed.value)
    assert "2 unusable file(s)" in message
    assert "broken.png: unreadable" in message and "small.npy: expected images of shape" in message


# ---------------------------------------------------------------------------------- sleep


def test_sleep_pure_prediction_equals_the_evaluation(store):
    """Same feature steps (the reader's signals -> the epochs dataset) and same per-epoch
    stages as `sleep.predict_test_nights`."""
    from contrastive_signals.data.sleep_edf import read_sleep_edf_folder
    from contrastive_signals.inference.sleep import night_epochs, stage_epochs
    from contrastive_signals.io.mlflow_models import load_task_model

    model = load_task_model("models:/sleep@champion")
    name = _test_night(store)
    epochs = torch.load(store / "data/03_primary/sleep_epochs.pt", weights_only=True)
    recording = next(r for r in epochs["recordings"] if r["name"] == name)
    predictions = torch.load(store / "data/07_model_output/sleep_test_predictions.pt",
                             weights_only=True)
    expected = next(r for r in predictions["recordings"] if r["name"] == name)
    raw = next(r for r in read_sleep_edf_folder(store / "data/01_raw/sleep_edf",
                                                channels=CHANNELS, keep_wake_minutes=30.0)
               if r["name"] == name)
    computed = night_epochs(model.bundle, raw["signals"], raw["sampling_rate"])
    np.testing.assert_array_equal(computed[raw["labels"] >= 0], recording["epochs"].numpy())
    probs = stage_epochs(model.bundle, recording["epochs"], model=model.model)
    np.testing.assert_array_equal(probs.argmax(1), expected["predicted"].numpy())


def _stages_csv(project):
    stem = _test_psg(project).name.removesuffix(".edf")
    return pd.read_csv(project / OUT / f"sleep/{stem}_stages.csv"), stem


def test_sleep_pipeline_files_and_both_pyfunc_forms_agree(project, run):
    table, stem = _stages_csv(project)
    assert list(table.columns) == ["onset", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_REM"]
    assert (project / OUT / f"sleep/{stem}_hypnogram.png").stat().st_size > 0
    annotations = mne.read_annotations(project / OUT / f"sleep/{stem}_stages-Annotations.edf")
    assert len(annotations) == len(table)
    assert [d.removeprefix("Sleep stage ") for d in annotations.description[:3]] == \
        [{"REM": "R", "N1": "1", "N2": "2", "N3": "3"}.get(s, s) for s in table["stage"][:3]]
    array = np.load(project / "requests/night_out.npz")
    np.testing.assert_allclose(array["probabilities"], table.filter(like="p_").to_numpy(),
                               atol=1e-6)
    np.testing.assert_array_equal(array["onset"], table["onset"].to_numpy())
    edf = pd.read_csv(project / "requests/night_edf_out.csv")
    assert (edf["night"] == 0).all()
    pd.testing.assert_frame_equal(edf.drop(columns="night"), table, check_exact=False,
                                  atol=1e-6, rtol=0)


def test_sleep_edf_endpoint_equals_the_pipeline_and_names_bad_requests(project, run):
    from contrastive_signals.data.sleep_edf import psg_edf_bytes

    url = f"{run['servers']['sleep_edf'].url}/invocations"
    night = json.loads((project / "requests/night_edf.json").read_text())["edf_base64"][0]
    status, answer = post_json(url, {"dataframe_split": {"columns": ["edf_base64"],
                                                         "data": [[night]]}})
    assert status == 200, answer
    table, _ = _stages_csv(project)
    got = pd.DataFrame(answer["predictions"])
    pd.testing.assert_frame_equal(got.drop(columns="night"), table, check_exact=False,
                                  atol=1e-6, rtol=0)
    other = psg_edf_bytes(np.zeros((2, 3000)) + 1e-6, 100.0, ["EEG C3", "EEG C4"])

    def body(text):
        return {"dataframe_split": {"columns": ["edf_base64"], "data": [[text]]}}

    bad = {"not base64": (body("%%% not base64 %%%"), "not valid base64"),
           "not an EDF": (body(base64.b64encode(b"just text").decode()), "not an EDF file"),
           "missing channels": (body(base64.b64encode(other).decode()),
                                "missing channel(s) ['EEG Fpz-Cz', 'EEG Pz-Oz', "
                                "'EOG horizontal']; the file has ['EEG C3', 'EEG C4']"),
           "wrong column": ({"dataframe_split": {"columns": ["edf"], "data": [[night[:40]]]}},
                            "edf_base64"),
           "no rows": ({"dataframe_split": {"columns": ["edf_base64"], "data": []}}, "no rows")}
    assert_refused(url, {what: request for what, (request, _) in bad.items()})
    for what, (request, needle) in bad.items():
        assert needle in post_json(url, request)[1]["message"], what


def test_sleep_array_form_refuses_bad_requests(store):
    """The array model's checks, through MLflow's pyfunc wrapper (schema enforcement, then
    ours): MLflow's INVALID_PARAMETER_VALUE, which its server answers with HTTP 400."""
    model = mlflow.pyfunc.load_model("models:/sleep@champion")
    bad = {"two channels": (np.zeros((1, 2, 3000), np.float32), "does not match expected shape"),
           "strings": (np.array([[["a"] * 3000] * 3]), "enforce"),
           "too short": (np.zeros((1, 3, 100), np.float32), "shorter than one 30-s epoch"),
           "NaN": (np.full((1, 3, 3000), np.nan, np.float32), "NaN")}
    for what, (data, needle) in bad.items():
        with pytest.raises(MlflowException) as failed:
            model.predict(data)
        assert failed.value.error_code == "INVALID_PARAMETER_VALUE", what
        assert needle.lower() in str(failed.value).lower(), (what, str(failed.value))


def test_sleep_bad_files_are_named(store):
    """The node itself (no Kedro start-up): one message naming both files and why."""
    from contrastive_signals.pipelines.inference.nodes import InferenceInputError, sleep_inference

    inbox = store / "data/01_raw/inference/bad"
    inbox.mkdir(parents=True)
    (inbox / "SC4991E0-PSG.edf").write_bytes(b"not an EDF file at all")
    info = mne.create_info(["EEG A", "EEG B", "EOG C"], 100.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).normal(0, 1e-5, (3, 6000)), info,
                          verbose="error")
    mne.export.export_raw(inbox / "SC4992E0-PSG.edf", raw, fmt="edf", verbose="error")
    with pytest.raises(InferenceInputError) as failed:
        sleep_inference({"model": "latest", "input_folder": str(inbox),
                         "output_folder": str(store / "out")})
    message = str(failed.value)
    assert "2 unusable file(s)" in message
    assert "SC4991E0-PSG.edf" in message and "SC4992E0-PSG.edf" in message
    assert "missing channel(s) ['EEG Fpz-Cz', 'EEG Pz-Oz', 'EOG horizontal']" in message
    with pytest.raises(InferenceInputError, match="no EDF\\+ recordings in"):
        sleep_inference({"model": "latest", "input_folder": str(store / "nothing"),
                         "output_folder": str(store / "out")})


# ------------------------------------------------------------------------------------ AFM


def _afm_evaluation(project):
    """The training evaluation (`afm_evaluate_<variant>`'s own function) on the saved
    features, split and classifier: test predictions by curve id, and the features."""
    from contrastive_signals.pipelines.afm.nodes import evaluate_classifier

    features = torch.load(project / "data/04_feature/afm_deriv_features.pt", weights_only=True)
    split = json.loads((project / "data/03_primary/afm_split.json").read_text())
    classifier = torch.load(_latest(project / f"data/06_models/afm.{AFM_VARIANT}_encoder.pt"),
                            weights_only=True)
    predictions, _ = evaluate_classifier(features, classifier, split)
    ids = torch.load(project / "data/03_primary/afm_curves.pt", weights_only=True)["curve_ids"]
    return dict(zip([ids[i] for i in split["test"]], predictions["y_pred"], strict=True)), features


def test_afm_pipeline_equals_the_evaluation(store, run):
    from contrastive_signals.data.afm_curves import read_afm_file
    from contrastive_signals.data.afm_simulator import AFM_CLASSES
    from contrastive_signals.inference.afm import curve_features, grid_curves
    from contrastive_signals.io.mlflow_models import load_task_model

    expected, features = _afm_evaluation(store)
    table = pd.read_csv(store / OUT / "afm/predictions.csv")
    assert len(table) == len(features["curves"]) and (table["file"] == "simulated-000.h5").all()
    rows = table.set_index("curve_id").loc[list(expected)]
    assert list(rows["predicted_class"]) == [AFM_CLASSES[i] for i in expected.values()]
    probabilities = rows.filter(like="p_").to_numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(rows["probability"], probabilities.max(1), atol=1e-6)
    # Same feature step, no copy: the inference path's features are the training features.
    bundle = load_task_model("models:/afm@champion").bundle
    curves = read_afm_file(store / "data/01_raw/inference/afm/simulated-000.h5")
    np.testing.assert_array_equal(curve_features(bundle, grid_curves(bundle, curves)),
                                  features["curves"].numpy())


def test_afm_pyfunc_equals_the_pipeline(project, run):
    pyfunc = np.load(project / "requests/curves_out.npz")
    table = pd.read_csv(project / OUT / "afm/predictions.csv")
    np.testing.assert_allclose(pyfunc["probabilities"], table.filter(like="p_").to_numpy(),
                               atol=1e-6)
    assert list(pyfunc["class_name"]) == list(table["predicted_class"])


def test_afm_bad_files_and_requests_are_named(store):
    from contrastive_signals.data.afm_curves import write_afm_hdf5
    from contrastive_signals.data.afm_simulator import AfmSimulationConfig, simulate_curves
    from contrastive_signals.pipelines.inference.afm import afm_inference
    from contrastive_signals.pipelines.inference.nodes import InferenceInputError

    inbox = store / "data/01_raw/inference/bad_afm"
    inbox.mkdir(parents=True)
    (inbox / "broken.h5").write_bytes(b"not an HDF5 file")
    curve = simulate_curves(AfmSimulationConfig(n_curves=1, retract_points=16,
                                                approach_points=4, seed=1))[0]
    short = {**curve, "separation": curve["separation"][:8], "force": curve["force"][:8]}
    write_afm_hdf5([short], inbox / "short.h5", sampling_rate=1.0)
    with pytest.raises(InferenceInputError) as failed:
        afm_inference({"model": "latest", "input_folder": str(inbox)})
    message = str(failed.value)
    assert "2 unusable file(s)" in message
    assert "broken.h5: afmformats cannot read it" in message
    assert "short.h5: curve 0: no retract segment (8 retract samples; need >= 16)" in message
    with pytest.raises(InferenceInputError, match="no AFM force-curve files in"):
        afm_inference({"model": "latest", "input_folder": str(store / "nothing")})
    model = mlflow.pyfunc.load_model("models:/afm@champion")
    for what, (data, needle) in {
            "one curve as a vector": (np.zeros(512, np.float32), "does not match expected shape"),
            "too short": (np.zeros((2, 8), np.float32), "L >= 16"),
            "NaN": (np.full((1, 512), np.nan, np.float32), "NaN")}.items():
        with pytest.raises(MlflowException) as refused:
            model.predict(data)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE", what
        assert needle in str(refused.value), (what, str(refused.value))
