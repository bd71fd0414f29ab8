"""The `ctc` pipeline sliced and run with SequentialRunner on tiny parameters."""

import copy

import pytest
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.pipelines.common import merged_report
from contrastive_signals.pipelines.ctc import create_pipeline
from contrastive_signals.pipelines.ctc.nodes import (
    evaluate_ctc_model,
    make_ctc_sequences,
    train_ctc_model,
)
from contrastive_signals.training.device import torch_threads
from tests.pipelines.test_pipelines import run

FIT = {"epochs": 2, "learning_rate": 0.003, "device": "cpu", "seed": 0, "progress": False,
       "monitor": "val_cer"}
DATA = {"sequence_length": 160, "min_segment": 20, "max_segment": 60, "val_size": 6,
        "test_size": 8}
CTC = {
    "data": DATA,
    "cnn": {"model": {"architecture": "ctc_cnn", "channels": 8, "kernel_size": 5,
                      "downsample": 16},
            "batch_size": 4, "steps_per_epoch": 2, "num_threads": 1, "fit": dict(FIT)},
    "bilstm": {"model": {"architecture": "ctc_bilstm", "channels": 8, "kernel_size": 5,
                         "downsample": 8, "hidden_size": 8},
               "batch_size": 4, "steps_per_epoch": 2, "num_threads": 1, "fit": dict(FIT)},
    "decoding": {"beam_width": 3},
    "plots": {"sample": 1},
}
MODELS = ("ctc_cnn", "ctc_bilstm")
METRICS = ("cer", "cer_beam", "substitutions", "deletions", "insertions")


# The sleep pipeline's report, merged into ctc_metrics.json by the `ctc` report node.
SLEEP_REPORT = {"sleep_metrics": {"sleep.epoch_acc": 0.5, "sleep.cer": 0.25}}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (and stall on a busy machine)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def outputs():
    return run(create_pipeline(), SLEEP_REPORT, {"ctc": CTC},
               keep=("ctc_synthetic_sequences", "ctc_synthetic_metrics", "ctc_cnn.test_scores",
                     *(f"{m}.{kind}" for m in MODELS for kind in ("encoder", "history"))))


def test_pipeline_writes_metrics_models_histories_and_plots(outputs):
    metrics = outputs["ctc_metrics"]
    assert set(metrics) == {f"{m}.{name}" for m in MODELS for name in METRICS} | set(
        SLEEP_REPORT["sleep_metrics"])
    for model in MODELS:
        assert 0.0 <= metrics[f"{model}.cer"] and 0.0 <= metrics[f"{model}.cer_beam"]
        assert all(float(metrics[f"{model}.{n}"]).is_integer()
                   for n in ("substitutions", "deletions", "insertions"))
    assert outputs["ctc_synthetic_metrics"] == {
        name: value for name, value in metrics.items() if not name.startswith("sleep.")}
    assert outputs["ctc_metrics_mlflow"] == {n: {"value": v, "step": 0} for n, v in metrics.items()}
    for model in MODELS:
        history = outputs[f"{model}.history"]
        assert len(history["val_cer"]) == len(history["train_loss"]) == 2
        steps = outputs[f"{model}.history_metrics"][f"{model}.val_cer"]
        assert [s["step"] for s in steps] == [0, 1]
        assert isinstance(outputs[f"{model}.emissions_plot"], Figure)
    assert isinstance(outputs["ctc_cer_curves_plot"], Figure)


def test_bundles_rebuild_into_sequence_labellers(outputs):
    signals = outputs["ctc_synthetic_sequences"]["test"]["signals"]
    for model, architecture, frames in (("ctc_cnn", "ctc_cnn", 10), ("ctc_bilstm", "ctc_bilstm", 20)):
        bundle = outputs[f"{model}.encoder"]
        assert bundle["architecture"] == architecture and bundle["config"]["num_classes"] == 3
        log_probs = from_bundle(bundle)(signals)
        assert log_probs.shape == (frames, 8, 4)


def test_fixed_sets_follow_the_data_parameters(outputs):
    sequences = outputs["ctc_synthetic_sequences"]
    assert sequences["val"]["signals"].shape == (6, 1, 160)
    assert sequences["test"]["signals"].shape == (8, 1, 160)
    again = make_ctc_sequences(CTC)
    assert torch.equal(again["test"]["signals"], sequences["test"]["signals"])
    assert not torch.equal(again["val"]["signals"][:6], sequences["test"]["signals"][:6])


@pytest.mark.parametrize("path, value, message", [
    (("bilstm", "model", "downsample"), 3, r"ctc\.bilstm\.model: downsample must be a power of two"),
    (("cnn", "model", "architecture"), "ctc_lstm", r"ctc\.cnn\.model: architecture must be one of"),
    (("cnn", "model", "downsample"), 32, "ctc.*downsample"),
    (("bilstm", "fit", "learning_rate"), -1.0, r"ctc\.bilstm\.fit: learning_rate must be > 0"),
    (("data", "noise_std"), -0.5, r"ctc\.data: noise_std must be >= 0"),
    (("decoding", "beam_width"), 0, r"ctc\.decoding: beam_width must be >= 1"),
    (("bilstm", "batch_sise"), 4, r"ctc\.bilstm: unknown parameter\(s\) \['batch_sise'\]"),
])
def test_bad_parameter_fails_before_training_naming_it(path, value, message):
    params = copy.deepcopy(CTC)
    target = params
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ParameterError, match=message):
        make_ctc_sequences(params)  # the pipeline's first node
    with pytest.raises(Exception, match=message):
        run(create_pipeline(), SLEEP_REPORT, {"ctc": params})


def test_too_coarse_downsampling_is_explained():
    params = copy.deepcopy(CTC)
    params["cnn"]["model"]["downsample"] = 16
    params["data"] = {**DATA, "min_segment": 10, "max_segment": 40}  # up to 16 segments
    with pytest.raises(ParameterError, match="cnn.model.downsample=16 leaves 10 output frames"):
        make_ctc_sequences(params)


def test_nodes_do_not_mutate_inputs_and_are_reproducible(outputs):
    sequences = outputs["ctc_synthetic_sequences"]
    before = copy.deepcopy(sequences)
    first = train_ctc_model(sequences, DATA, CTC["cnn"], model="cnn")
    second = train_ctc_model(sequences, DATA, CTC["cnn"], model="cnn")
    assert first[1] == second[1]
    evaluate_ctc_model(sequences, first[0], CTC["decoding"])
    for part in before:
        for key, value in before[part].items():
            assert torch.equal(value, sequences[part][key]), (part, key)
    assert outputs["ctc_cnn.test_scores"]["metrics"] == evaluate_ctc_model(
        sequences, outputs["ctc_cnn.encoder"], CTC["decoding"])["metrics"]


def test_report_merges_further_metric_dicts():
    merged, mlflow = merged_report({"ctc_cnn.cer": 0.01}, {"sleep_ctc.cer": 0.2})
    assert merged == {"ctc_cnn.cer": 0.01, "sleep_ctc.cer": 0.2}
    assert mlflow["sleep_ctc.cer"] == {"value": 0.2, "step": 0}
    with pytest.raises(ValueError, match=r"reported twice: \['ctc_cnn.cer'\]"):
        merged_report({"ctc_cnn.cer": 0.01}, {"ctc_cnn.cer": 0.02})
