"""CTC sequence labellers: output layout and length, initialisation, bundles, learning."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastive_signals.models.registry import build_model, from_bundle, to_bundle
from contrastive_signals.models.sequence import (
    ConvBiLSTM,
    SequenceCNN,
    he_init,
    sequence_log_probs,
)
from contrastive_signals.training.device import torch_threads

TINY = {"in_channels": 1, "num_classes": 3, "channels": 8, "kernel_size": 5}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (and stall on a busy machine)."""
    with torch_threads(1):
        yield


@pytest.mark.parametrize("architecture, extra", [
    ("ctc_cnn", {"downsample": 1}), ("ctc_cnn", {"downsample": 8}), ("ctc_cnn", {"downsample": 16}),
    ("ctc_bilstm", {"downsample": 2, "hidden_size": 6}),
    ("ctc_bilstm", {"downsample": 8, "hidden_size": 6}),
])
@pytest.mark.parametrize("length", [64, 100, 401])
def test_log_probabilities_per_output_frame(architecture, extra, length):
    model = build_model(architecture, {**TINY, **extra}, seed=0).eval()
    out = model(torch.randn(3, 1, length))
    assert out.shape == (model.output_length(length), 3, 4)
    assert model.output_length(length) == -(-length // extra["downsample"])
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(out.shape[:2]))


def test_he_initialisation_of_linear_layers():
    layer = nn.Linear(400, 300)
    he_init(layer)
    assert layer.weight.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    assert (layer.bias == 0).all()
    for model in (SequenceCNN(channels=64), ConvBiLSTM(hidden_size=64)):
        assert (model.classifier.bias == 0).all()
        fan_in = model.classifier.in_features
        assert model.classifier.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.3)


def test_bilstm_is_one_bidirectional_layer_with_forget_bias_one():
    model = ConvBiLSTM(hidden_size=5)
    assert model.lstm.num_layers == 1 and model.lstm.bidirectional
    assert torch.equal(model.lstm.bias_ih_l0[5:10], torch.ones(5))


@pytest.mark.parametrize("cls, kwargs, message", [
    (SequenceCNN, {"downsample": 3}, "power of two"),
    (SequenceCNN, {"downsample": 32}, "power of two from 1 to 16"),
    (SequenceCNN, {"kernel_size": 4}, "odd"),
    (ConvBiLSTM, {"downsample": 1}, ">= 2"),
    (ConvBiLSTM, {"hidden_size": 0}, "hidden_size"),
    (SequenceCNN, {"num_classes": 0}, "num_classes"),
])
def test_bad_configurations_are_rejected(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("architecture, extra", [("ctc_cnn", {"downsample": 4}),
                                                 ("ctc_bilstm", {"downsample": 4, "hidden_size": 6})])
def test_bundle_round_trip_and_batched_inference(architecture, extra):
    config = {**TINY, **extra}
    model = build_model(architecture, config, seed=3).eval()
    rebuilt = from_bundle(to_bundle(model, architecture, config))
    signals = torch.randn(7, 1, 48)
    expected = model(signals)
    torch.testing.assert_close(rebuilt(signals), expected)
    torch.testing.assert_close(sequence_log_probs(rebuilt, signals, batch_size=3), expected)
    assert not rebuilt.training


@pytest.mark.parametrize("architecture, extra", [("ctc_cnn", {"downsample": 4}),
                                                 ("ctc_bilstm", {"downsample": 4, "hidden_size": 8})])
def test_ctc_loss_falls_when_fitting_one_batch(architecture, extra):
    generator = torch.Generator().manual_seed(0)
    signals = torch.randn(4, 1, 64, generator=generator)
    targets = torch.tensor([[1, 2, 3], [2, 1, 0], [3, 0, 0], [1, 3, 1]])
    target_lengths = torch.tensor([3, 2, 1, 3])
    model = build_model(architecture, {**TINY, **extra}, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)

    def loss():
        out = model(signals)
        lengths = torch.full((4,), out.shape[0], dtype=torch.long)
        return F.ctc_loss(out, targets, lengths, target_lengths)

    first = loss().item()
    for _ in range(30):
        optimiser.zero_grad()
        value = loss()
        value.backward()
        optimiser.step()
    assert value.item() < 0.5 * first
