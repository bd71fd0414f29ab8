"""The `sleep` pipeline run with SequentialRunner on tiny synthetic nights: the EDF+ files
really are written and read back (the two raw datasets point at a temporary folder), the
rest stays in memory."""

import copy

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import DatasetError
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError
from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
from contrastive_signals.io.sleep_edf_dataset import (
    SleepEdfDataset,
    SyntheticSleepEdfDataset,
    write_hypnogram_edf,
    write_psg_edf,
)
from contrastive_signals.pipelines.sleep import create_pipeline
from contrastive_signals.pipelines.sleep.nodes import build_sleep_epochs, train_sleep_model
from tests.pipelines.kept_memory import KeptMemoryDataset

FIT = {"epochs": 2, "learning_rate": 0.002, "device": "cpu", "seed": 0, "progress": False}
PARAMS = {
    "synthetic": {"n_subjects": 4, "sleep_hours": 0.5, "wake_before_minutes": 35.0,
                  "wake_after_minutes": 35.0, "seed": 0},
    "ingestion": {"split": {"val_subjects": 1, "test_subjects": 1, "seed": 0}},
    "training": {"window": 8, "batch_size": 4, "fit": FIT,
                 "model": {"base_channels": 4, "embedding_dim": 16, "hidden_dim": 8}},
    "evaluation": {"stride": 4},
}
METRICS = {"sleep.epoch_acc", "sleep.macro_f1", "sleep.kappa", "sleep.cer", "sleep.transitions_abs_err"}
KEPT = ("sleep.epochs", "sleep.split", "sleep.test_predictions", "sleep.model")


# Tiny models: one torch thread (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_sleep(folder, params=PARAMS, pipeline=None) -> dict:
    datasets = {
        "sleep.synthetic_edf": SyntheticSleepEdfDataset(folder=str(folder)),
        "sleep.edf_recordings": SleepEdfDataset(folder=str(folder), keep_wake_minutes=10.0),
        **{name: KeptMemoryDataset() for name in KEPT},
        **{f"params:sleep.{key}": MemoryDataset(value) for key, value in params.items()},
    }
    catalog = DataCatalog(datasets=datasets)
    outputs = SequentialRunner().run(pipeline or create_pipeline(), catalog)
    loaded = {name: value.load() if hasattr(value, "load") else value for name, value in outputs.items()}
    return {**loaded, **{name: catalog.load(name) for name in KEPT}}


@pytest.fixture(scope="module")
def sleep_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sleep_edf")
    return folder, run_sleep(folder)


def test_pipeline_writes_edf_and_reports_every_metric(sleep_run):
    folder, out = sleep_run
    assert len(list(folder.glob("SC4??1E0-PSG.edf"))) == 4
    assert len(list(folder.glob("SC4??1E?-Hypnogram.edf"))) == 4
    metrics = out["sleep_metrics"]
    assert set(metrics) == METRICS
    for name in ("sleep.epoch_acc", "sleep.macro_f1"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert -1.0 <= metrics["sleep.kappa"] <= 1.0
    assert metrics["sleep.cer"] >= 0.0 and metrics["sleep.transitions_abs_err"] >= 0.0
    assert out["sleep_metrics_mlflow"] == {k: {"value": v, "step": 0} for k, v in metrics.items()}
    assert isinstance(out["sleep.hypnogram_plot"], Figure)
    assert isinstance(out["sleep.confusion_plot"], Figure)
    assert len(out["sleep.history"]["train_loss"]) == 2
    assert {"sleep.train_loss", "sleep.val_kappa"} <= set(out["sleep.history_metrics"])


def test_epochs_split_model_and_predictions(sleep_run):
    _, out = sleep_run
    epochs = out["sleep.epochs"]
    assert epochs["stages"] == ["W", "N1", "N2", "N3", "REM"]
    assert epochs["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    for recording in epochs["recordings"]:
        assert recording["epochs"].shape[1:] == (3, 3000)
        assert len(recording["labels"]) == len(recording["epochs"]) == len(recording["epoch_index"])
        assert int(recording["labels"].min()) >= 0
    split = out["sleep.split"]
    subjects = [set(split[p]["subjects"]) for p in ("train", "val", "test")]
    assert [len(s) for s in subjects] == [2, 1, 1]
    assert set().union(*subjects) == {0, 1, 2, 3}
    by_subject = {r["name"]: r["subject"] for r in epochs["recordings"]}
    for part, members in zip(("train", "val", "test"), subjects, strict=True):
        assert {by_subject[name] for name in split[part]["recordings"]} == members
    bundle = out["sleep.model"]
    assert bundle["architecture"] == "sleep_stager" and bundle["window"] == 8
    predictions = out["sleep.test_predictions"]["recordings"]
    assert [p["name"] for p in predictions] == split["test"]["recordings"]
    for p in predictions:
        assert p["true"].shape == p["predicted"].shape
        assert sum(len(w) > 0 for w in p["window_references"]) == -(-len(p["true"]) // 8)


@pytest.mark.slow
def test_same_seed_same_metrics(sleep_run, tmp_path):
    _, first = sleep_run
    again = run_sleep(tmp_path, pipeline=create_pipeline())
    assert again["sleep_metrics"] == first["sleep_metrics"]


def test_pipeline_nodes_are_named_in_the_sleep_namespace():
    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == {
        "sleep.generate_synthetic_recordings", "sleep.build_epochs", "sleep.split_subjects",
        "sleep.train_stager", "sleep.predict_test_nights", "sleep.evaluate",
        "sleep.plot_hypnogram", "sleep.plot_confusion"}
    assert "sleep_metrics" in pipeline.all_outputs()


def test_build_epochs_does_not_mutate_and_checks_the_listing(sleep_run):
    folder, _ = sleep_run
    recordings = SleepEdfDataset(folder=str(folder), keep_wake_minutes=10.0).load()
    before = copy.deepcopy(recordings)
    listing = SyntheticSleepEdfDataset(folder=str(folder)).load()
    build_sleep_epochs(recordings, listing, PARAMS["ingestion"])
    for old, new in zip(before, recordings, strict=True):
        np.testing.assert_array_equal(old["signals"], new["signals"])
        np.testing.assert_array_equal(old["labels"], new["labels"])
    with pytest.raises(ValueError, match="not among the folder's Sleep-EDF files"):
        build_sleep_epochs(recordings, listing[2:], PARAMS["ingestion"])


@pytest.mark.parametrize(("node_params", "message"), [
    ({"normalize": "zscore"}, r"sleep\.ingestion: normalize must be one of"),
    ({"high_hz": 60.0}, r"sleep\.ingestion: high_hz \(60.0\) must lie below the Nyquist"),
    ({"split": {"test_subjects": 0}}, r"sleep\.ingestion\.split: need val_subjects >= 0 and test_subjects >= 1"),
])
def test_bad_ingestion_parameters_are_named(sleep_run, node_params, message):
    _, out = sleep_run
    with pytest.raises(ParameterError, match=message):
        build_sleep_epochs([], [], node_params)


def test_bad_training_parameter_fails_before_training(sleep_run):
    _, out = sleep_run
    with pytest.raises(ParameterError, match=r"sleep\.training: window must be >= 2"):
        train_sleep_model(out["sleep.epochs"], out["sleep.split"], {**PARAMS["training"], "window": 1})
    with pytest.raises(ParameterError, match=r"sleep\.training\.model: unknown parameter\(s\) \['width'\]"):
        train_sleep_model(out["sleep.epochs"], out["sleep.split"],
                          {**PARAMS["training"], "model": {"width": 3}})


def test_no_generated_nights_beside_real_files_it_cannot_pair(tmp_path):
    files = synthetic_sleep_edf(SyntheticSleepConfig(n_subjects=1, sleep_hours=0.25, seed=0))
    psg, hypnogram = sorted(files, key=lambda name: not name.endswith("-PSG.edf"))
    write_psg_edf(files[psg], tmp_path / "subject1-night1.edf")        # the user's own names
    write_hypnogram_edf(files[hypnogram], tmp_path / "subject1-night1-scoring.edf")
    with pytest.raises(DatasetError, match="2 EDF file\\(s\\) that the Sleep-EDF reader cannot "
                                           "pair") as error:
        run_sleep(tmp_path)
    assert "subject1-night1.edf" in str(error.value)
    assert "subject1-night1-scoring.edf" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["subject1-night1-scoring.edf",
                                                          "subject1-night1.edf"]


def test_too_few_subjects_for_the_default_split_names_the_parameters(tmp_path):
    params = {**PARAMS, "synthetic": {**PARAMS["synthetic"], "n_subjects": 3}, "ingestion": {}}
    with pytest.raises(ParameterError) as error:
        run_sleep(tmp_path, params)
    message = str(error.value)
    for fragment in ("sleep.ingestion.split.test_subjects=2", "sleep.ingestion.split.val_subjects=1",
                     "need 4 subjects", "hold 3 subject(s) [0, 1, 2]"):
        assert fragment in message, fragment
