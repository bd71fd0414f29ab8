"""The ``image_regression`` method (the U-Net's MSE) and what paired-image methods share:
batches of (clean, noisy, views), one step, a loss that falls, compatibility."""

import pytest
import torch

from contrastive_signals.methods.base import check_compatible
from contrastive_signals.methods.regression import ImageRegression
from contrastive_signals.models.registry import build_model
from contrastive_signals.training.autocast import CpuBf16Forward
from tests.methods.pairs import SIZE, fit_on_one_batch, tiny_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unet():
    return build_model("residual_unet", {"base_channels": 4, "depth": 2}, seed=0)


def test_batches_pair_each_clean_image_with_one_of_its_noisy_versions():
    train = tiny_pairs(count=6)
    batches = ImageRegression().batches(train, batch_size=4, epochs=1)
    first = list(batches(0, torch.Generator().manual_seed(3)))
    again = list(batches(0, torch.Generator().manual_seed(3)))
    assert len(first) == 1  # full batches only
    clean, noisy, views = first[0]
    assert clean.shape == noisy.shape == (4, 1, SIZE, SIZE)
    stacked = torch.stack([train["noisy"][v] for v in sorted(train["noisy"])])
    for c, n, v in zip(clean[:, 0], noisy[:, 0], views, strict=True):
        k = int(torch.nonzero((train["clean"] == c).flatten(1).all(1))[0])
        torch.testing.assert_close(n, stacked[v, k])
    for a, b in zip(first[0], again[0], strict=True):
        torch.testing.assert_close(a, b)


def test_one_step_is_the_mean_squared_error():
    method = ImageRegression()
    model = method.build(_unet())
    clean, noisy = torch.rand(2, 4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    loss = method.loss(model, (clean, noisy, torch.zeros(4)), torch.Generator())
    torch.testing.assert_close(loss, (model(noisy) - clean).square().mean())
    loss.backward()
    assert model.out.weight.grad.abs().sum() > 0
    assert method.export(model) is model and method.on_epoch_end(model, 0) == {}


def test_loss_decreases_over_a_few_steps():
    result = fit_on_one_batch(ImageRegression(), _unet(), tiny_pairs(count=8), steps=8)
    losses = result.history["train_loss"]
    assert losses[-1] < 0.75 * losses[0], losses


def test_cpu_bf16_loss_stays_float32():
    method = ImageRegression(forward=CpuBf16Forward(enabled=True, device="cpu"))
    model = method.build(_unet())
    clean, noisy = torch.rand(2, 4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    loss = method.loss(model, (clean, noisy, torch.zeros(4)), torch.Generator())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_image_regression_needs_an_image_to_image_model():
    check_compatible("image_regression", ImageRegression.requires, "residual_unet")
    with pytest.raises(ValueError, match=r"'hvae' reads image data and returns split_latent"):
        check_compatible("image_regression", ImageRegression.requires, "hvae")
