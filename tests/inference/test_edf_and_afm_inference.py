"""The EDF-bytes form of the sleep stager, the AFM classification and the model-choice
grammar, on tiny untrained models: same results as the training code paths, bad inputs
named."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
import torch

from contrastive_signals.data.afm_curves import curves_to_grid
from contrastive_signals.data.sleep_edf import psg_edf_bytes
from contrastive_signals.inference import InputError
from contrastive_signals.inference.afm import (
    afm_bundle,
    classify_curves,
    curve_features,
    force_rows,
    grid_curves,
)
from contrastive_signals.inference.bundles import model_choice
from contrastive_signals.inference.sleep import (
    decode_edf_base64,
    read_psg_bytes,
    sleep_bundle,
    stage_edf_bytes,
    stage_night,
    stages_table,
)
from contrastive_signals.models.registry import build_model, embed, to_bundle
from contrastive_signals.signal.steps import apply_feature_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
INGESTION = {"low_hz": 0.3, "high_hz": 35.0, "filter_order": 4, "target_hz": 100.0,
             "normalize": "robust", "clip": 20.0}


@pytest.fixture(scope="module")
def stager():
    config = {"in_channels": 3, "num_stages": 5, "base_channels": 4, "embedding_dim": 16,
              "hidden_dim": 8}
    model = build_model("sleep_stager", config, seed=0).eval()
    return sleep_bundle({**to_bundle(model, "sleep_stager", config), "window": 4,
                         "stages": ["W", "N1", "N2", "N3", "REM"]}, channels=CHANNELS,
                        ingestion=INGESTION, evaluation={"stride": 2, "batch_size": 4})


def test_an_edf_night_stages_as_its_signals(stager):
    signals = np.random.default_rng(0).normal(0, 2e-5, (3, 100 * 30 * 5))
    data = psg_edf_bytes(signals, 100.0, CHANNELS)
    read, rate = read_psg_bytes(data, CHANNELS)
    assert rate == 100.0 and read.shape == signals.shape
    np.testing.assert_allclose(read, signals, atol=1e-8)  # 16-bit quantisation
    out = stage_edf_bytes(stager, decode_edf_base64(base64.b64encode(data).decode()))
    expected = stage_night(stager, read, rate)
    np.testing.assert_array_equal(out["probabilities"], expected["probabilities"])
    table = stages_table(out)
    assert list(table.columns) == ["onset", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_REM"]
    assert len(table) == 5 and set(table["stage"]) <= {"W", "N1", "N2", "N3", "REM"}


@pytest.mark.parametrize(("text", "message"), [
    ("%%%", "not valid base64"),
    ("", "empty"),
    (3, "expected the EDF file's bytes as a base64 string, got int"),
])
def test_bad_base64_is_named(text, message):
    with pytest.raises(InputError, match=f"^row 0: .*{message}"):
        decode_edf_base64(text, source="row 0")


def test_bad_edf_bytes_are_named(stager):
    with pytest.raises(InputError, match="^row 1: not an EDF file"):
        stage_edf_bytes(stager, b"hello", source="row 1")
    other = psg_edf_bytes(np.zeros((1, 3000)) + 1e-6, 100.0, ["EEG C3"])
    with pytest.raises(InputError, match=r"missing channel\(s\) .*the file has \['EEG C3'\]"):
        stage_edf_bytes(stager, other)


@pytest.fixture(scope="module")
def afm():
    steps = [{"name": "baseline", "far_fraction": 0.25}, {"name": "resample_length", "length": 64},
             {"name": "scale", "factor": 1.0e10}, {"name": "derivative_channel"}]
    config = {"in_channels": 2, "length": 64, "channels": [4, 4], "kernel_size": 5,
              "embedding_dim": 8, "num_classes": 4, "dropout": 0.1}
    model = build_model("curve_cnn", config, seed=0).eval()
    bundle = afm_bundle(to_bundle(model, "curve_cnn", config), variant="deriv_pre_100pc",
                        steps=steps, grid_points=128)
    rng = np.random.default_rng(0)
    curves = [{"distance": np.sort(rng.uniform(0, 1e-7, 200)),
               "force": rng.normal(0, 1e-10, 200)} for _ in range(6)]
    return bundle, model, curves, steps


def test_afm_classes_equal_the_evaluation_path(afm):
    bundle, model, curves, steps = afm
    force, _ = curves_to_grid(curves, points=128)
    np.testing.assert_array_equal(grid_curves(bundle, curves), force)
    features, _ = apply_feature_steps(force, steps, sampling_rate=1.0)
    np.testing.assert_array_equal(curve_features(bundle, force), features.astype(np.float32))
    with torch.no_grad():
        logits = model.head(embed(model, torch.from_numpy(features.astype(np.float32))))
    out = classify_curves(bundle, force)
    np.testing.assert_array_equal(out["predicted"], logits.argmax(1).numpy())
    np.testing.assert_allclose(out["probabilities"], torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert out["class_name"][0] == bundle["classes"][out["predicted"][0]]
    np.testing.assert_allclose(out["probability"], out["probabilities"].max(1))


def test_afm_rows_of_another_length_are_put_on_the_grid():
    rows = np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(2, 0)
    np.testing.assert_allclose(force_rows(rows, 128)[:, 0], np.linspace(0, 1, 128)[None]
                               .repeat(2, 0), atol=1e-6)
    same = np.random.default_rng(0).normal(size=(3, 128)).astype(np.float32)
    np.testing.assert_array_equal(force_rows(same[:, None], 128)[:, 0], same)


@pytest.mark.parametrize(("force", "message"), [
    (np.zeros(128), "expected retract forces of shape \\[N, L\\]"),
    (np.zeros((2, 8)), "L >= 16"),
    (np.full((1, 128), np.inf), "NaN or infinite"),
    (np.array([["a"] * 20]), "must be numbers"),
])
def test_afm_bad_input_is_named(afm, force, message):
    with pytest.raises(InputError, match=f"^curves.npy: .*{message}"):
        classify_curves(afm[0], force, source="curves.npy")


@pytest.mark.parametrize(("choice", "parsed"), [
    (None, ("latest", "latest")), ("latest", ("latest", "latest")), (3, ("version", "3")),
    ("12", ("version", "12")), ("models:/sleep@champion", ("uri", "models:/sleep@champion")),
    ("runs:/abc/sleep_inference", ("uri", "runs:/abc/sleep_inference")),
])
def test_model_choice(choice, parsed):
    assert model_choice(choice) == parsed


@pytest.mark.parametrize("choice", ["best", 0, True, "models:/", ["latest"], 2.5])
def test_a_bad_model_choice_is_named(choice):
    with pytest.raises(ValueError, match="^inference.afm.model must be 'latest'"):
        model_choice(choice, what="inference.afm.model")


def test_stages_table_of_two_nights_keeps_the_column_order(stager):
    out = stage_night(stager, np.zeros((3, 3000 * 2)) + 1e-6, 100.0)
    table = pd.concat([stages_table(out).assign(night=i) for i in range(2)])
    assert len(table) == 4


def test_base64_with_line_breaks_decodes():
    data = bytes(range(256)) * 4
    wrapped = base64.encodebytes(data).decode()  # 76-character lines
    assert "\n" in wrapped and decode_edf_base64(wrapped) == data
