"""GAN losses against their formulas; the single-optimiser step reaches each player only
through its own loss; one step decreases each loss on a tiny batch."""

import pytest
import torch

from contrastive_signals.methods.gan import (
    GANMethod,
    GANParams,
    discriminator_loss,
    generator_loss,
)
from contrastive_signals.training.fit import FitConfig, fit

REAL, FAKE = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.5, 0.2, 1.2])


def test_non_saturating_losses_match_their_formulas():
    sig = torch.sigmoid
    d = -(torch.log(sig(REAL)).mean() + torch.log(1 - sig(FAKE)).mean())
    g = -torch.log(sig(FAKE)).mean()
    assert torch.allclose(discriminator_loss(REAL, FAKE, "non_saturating"), d, atol=1e-6)
    assert torch.allclose(generator_loss(FAKE, "non_saturating"), g, atol=1e-6)


def test_hinge_losses_match_their_formulas():
    d = torch.clamp(1 - REAL, min=0).mean() + torch.clamp(1 + FAKE, min=0).mean()
    assert torch.allclose(discriminator_loss(REAL, FAKE, "hinge"), d)
    assert torch.allclose(generator_loss(FAKE, "hinge"), -FAKE.mean())


def test_bad_parameters_fail():
    with pytest.raises(ValueError, match="loss"):
        GANParams(loss="wasserstein")


@pytest.mark.parametrize("spectral", [False, True])
def test_each_player_gets_only_its_own_gradient(spectral):
    """The summed loss's gradient on G is that of g_loss alone, and on D that of d_loss
    alone (computed here directly, without the method's detaching)."""
    method = GANMethod(GANParams(latent_dim=8, channels=8, spectral_norm=spectral),
                       num_classes=10)
    model = method.build(seed=0).eval()  # eval: spectral norm's power iteration stays put
    real, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8)
    total = method.loss(model, (real, labels), torch.Generator().manual_seed(0)).total
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    fake = model.generator(z, labels)
    d_alone = discriminator_loss(model.discriminator(real, labels),
                                 model.discriminator(fake, labels), "hinge")
    g_alone = generator_loss(model.discriminator(fake, labels), "hinge")
    for players, alone in ((model.generator, g_alone), (model.discriminator, d_alone)):
        params = list(players.parameters())
        expected = torch.autograd.grad(alone, params, retain_graph=True, allow_unused=True)
        got = torch.autograd.grad(total, params, retain_graph=True, allow_unused=True)
        for a, b in zip(got, expected, strict=True):
            if b is None:
                assert a is None or float(a.abs().max()) == 0
            else:
                assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("loss", ["hinge", "non_saturating"])
def test_one_step_decreases_each_loss_on_a_tiny_batch(loss):
    method = GANMethod(GANParams(loss=loss, latent_dim=8, channels=8), num_classes=10)
    model = method.build(seed=0)
    batch = (torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8))

    def parts():
        model.eval()  # BatchNorm statistics fixed: the same function before and after
        out = method.loss(model, batch, torch.Generator().manual_seed(5))
        return float(out.parts["d_loss"]), float(out.parts["g_loss"])

    d_before = parts()[0]
    # first the discriminator alone, then the generator alone: each player's own loss falls
    fit(model, loss_fn=lambda m, b, g: method.loss(m, b, torch.Generator().manual_seed(5)),
        batches=lambda epoch, g: [batch], parameters=model.discriminator.parameters(),
        config=FitConfig(epochs=1, learning_rate=1e-3, progress=False, cosine_schedule=False))
    assert parts()[0] < d_before
    g_mid = parts()[1]
    fit(model, loss_fn=lambda m, b, g: method.loss(m, b, torch.Generator().manual_seed(5)),
        batches=lambda epoch, g: [batch], parameters=model.generator.parameters(),
        config=FitConfig(epochs=1, learning_rate=1e-3, progress=False, cosine_schedule=False))
    assert parts()[1] < g_mid
