"""The pure prediction functions on tiny untrained models: same results as the training
code paths, and bad inputs named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastive_signals.data.sleep_edf import recording_epochs
from contrastive_signals.inference import InputError
from contrastive_signals.inference.digits import digits_bundle, majority_labels, predict_digits
from contrastive_signals.inference.sleep import sleep_bundle, stage_night
from contrastive_signals.models.registry import build_model, embed, to_bundle
from contrastive_signals.models.sleep import predict_recording
from contrastive_signals.signal.image_filters import image_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")
INGESTION = {"low_hz": 0.3, "high_hz": 35.0, "filter_order": 4, "target_hz": 100.0,
             "normalize": "robust", "clip": 20.0}


@pytest.fixture(scope="module")
def digits():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=generator)
    features = image_features(images, mean=0.5, std=0.5, filters=["box"])
    model = build_model("digit_cnn", {"embedding_dim": 8, "in_channels": 2}, seed=0).eval()
    train = embed(model, features).numpy()
    labels = np.arange(40) % 10
    bundle = digits_bundle("cnn", to_bundle(model, "digit_cnn", {"embedding_dim": 8,
                                                                 "in_channels": 2}),
                           {"mean": 0.5, "std": 0.5, "filters": ["box"]}, features, train,
                           labels, k=3)
    return bundle, images, train, labels


def test_digits_equal_the_training_embeddings_and_find_themselves(digits):
    bundle, images, train, labels = digits
    out = predict_digits(bundle, images[:5, 0].numpy())
    np.testing.assert_allclose(out["embedding"], train[:5], atol=1e-6)
    np.testing.assert_array_equal(out["neighbour_index"][:, 0], np.arange(5))
    np.testing.assert_allclose(out["neighbour_distance"][:, 0], 0, atol=1e-5)
    assert out["neighbour_label"].shape == (5, 3)


@pytest.mark.parametrize(("images", "message"), [
    (np.zeros((2, 27, 28)), "expected images of shape"),
    (np.full((1, 28, 28), 2.0), "must lie in \\[0, 1\\]"),
    (np.full((1, 28, 28), np.nan), "NaN"),
    (np.array([["a"] * 28] * 28), "must be numbers"),
])
def test_digits_bad_input_is_named(digits, images, message):
    with pytest.raises(InputError, match=f"^x.npy: .*{message}"):
        predict_digits(digits[0], images, source="x.npy")


def test_majority_label_ties_go_to_the_nearest():
    np.testing.assert_array_equal(majority_labels(np.array([[3, 1, 1], [2, 5, 7], [4, 4, 9]])),
                                  [1, 2, 4])


@pytest.fixture(scope="module")
def stager():
    config = {"in_channels": 3, "num_stages": 5, "base_channels": 4, "embedding_dim": 16,
              "hidden_dim": 8}
    model = build_model("sleep_stager", config, seed=0).eval()
    bundle = sleep_bundle({**to_bundle(model, "sleep_stager", config), "window": 4,
                           "stages": ["W", "N1", "N2", "N3", "REM"]},
                          channels=["a", "b", "c"], ingestion={**INGESTION, "split": {}},
                          evaluation={"stride": 2, "batch_size": 4, "decoder": "greedy"})
    return bundle, model


def test_sleep_equals_the_training_steps(stager):
    bundle, model = stager
    signals = np.random.default_rng(0).normal(0, 1e-5, (3, 200 * 30 * 7 + 50)).astype(np.float32)
    out = stage_night(bundle, signals, 200.0)
    epochs = recording_epochs({"signals": signals, "sampling_rate": 200.0,
                               "labels": np.zeros(7, dtype=np.int64)}, **INGESTION)["epochs"]
    probs, _ = predict_recording(model, torch.from_numpy(epochs), window=4, stride=2,
                                 batch_size=4)
    np.testing.assert_allclose(out["probabilities"], probs.numpy(), atol=1e-6)
    np.testing.assert_array_equal(out["onset"], np.arange(7) * 30.0)


@pytest.mark.parametrize(("signals", "rate", "message"), [
    (np.zeros((2, 3000)), 100.0, "expected signals of shape \\[3, L\\]"),
    (np.zeros((3, 2999)), 100.0, "shorter than one 30-s epoch"),
    (np.full((3, 3000), np.nan), 100.0, "NaN"),
    (np.zeros((3, 3000)), 50.0, "too low"),
])
def test_sleep_bad_input_is_named(stager, signals, rate, message):
    with pytest.raises(InputError, match=f"^night.edf: .*{message}"):
        stage_night(stager[0], signals, rate, source="night.edf")
