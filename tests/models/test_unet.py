import pytest
import torch

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.models.unet import ResidualUNet, UNetModelParams, apply_in_batches


def test_starts_as_identity_and_keeps_shape():
    torch.manual_seed(0)
    model = ResidualUNet(base_channels=4, depth=2).eval()
    images = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(model(images), images)
    torch.testing.assert_close(apply_in_batches(model, images, batch_size=2), images)


def test_learns_a_correction():
    torch.manual_seed(0)
    model = ResidualUNet(base_channels=4, depth=2)
    noisy, clean = torch.rand(8, 1, 16, 16), torch.zeros(8, 1, 16, 16)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        loss = (model(noisy) - clean).square().mean()
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.5 * first


def test_bad_input_is_rejected():
    model = ResidualUNet(base_channels=4, depth=2)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.rand(1, 1, 10, 10))
    with pytest.raises(ValueError, match=r"\[B, 1, N, N\]"):
        model(torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError):
        ResidualUNet(base_channels=0)


def test_bad_model_parameters_are_named():
    with pytest.raises(ParameterError, match=r"unet.model: base_channels and depth must be >= 1"):
        from_params(UNetModelParams, {"depth": 0}, path="unet.model")
    assert ResidualUNet(**UNetModelParams(base_channels=4).config()).depth == 3
