"""The 1-D curve CNN: shapes, bundle round trip, bad sizes."""

import pytest
import torch

from contrastive_signals.models.curves import CurveCNN, CurveCNNParams
from contrastive_signals.models.registry import build_model, from_bundle, to_bundle

CONFIG = {"in_channels": 2, "length": 64, "channels": [4, 8], "kernel_size": 5,
          "embedding_dim": 16, "num_classes": 4}


def test_shapes_and_bundle_round_trip():
    model = build_model("curve_cnn", CONFIG, seed=0).eval()
    x = torch.randn(3, 2, 64)
    assert model.embed(x).shape == (3, 16) and model(x).shape == (3, 4)
    again = from_bundle(to_bundle(model, "curve_cnn", CONFIG))
    torch.testing.assert_close(again(x), model(x))


def test_position_matters():
    """Flattened features: the same dip at another place gives another embedding."""
    model = build_model("curve_cnn", CONFIG, seed=0).eval()
    a, b = torch.zeros(1, 2, 64), torch.zeros(1, 2, 64)
    a[..., 10], b[..., 50] = -1.0, -1.0
    assert not torch.allclose(model.embed(a), model.embed(b))


def test_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        CurveCNN(length=100, channels=(4, 4, 4))
    with pytest.raises(ValueError, match="odd"):
        CurveCNN(kernel_size=4)


def test_curve_cnn_params_give_the_registry_config():
    config = CurveCNNParams(channels=(4, 8), embedding_dim=6).config(in_channels=2, length=32,
                                                                      num_classes=3)
    model = build_model("curve_cnn", config, seed=0)
    assert model(torch.zeros(2, 2, 32)).shape == (2, 3) and model.embedding_dim == 6
    with pytest.raises(ValueError, match="kernel_size"):
        CurveCNNParams(kernel_size=4)
