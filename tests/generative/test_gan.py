"""GAN losses against their formulas; alternating steps: each reaches only its own player,
the batches alternate the phases, the parameter groups carry each player's optimiser
settings, and one step of each player decreases its loss on a tiny batch."""

import pytest
import torch

from contrastive_signals.methods.gan import (
    DISCRIMINATOR,
    GENERATOR,
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


@pytest.mark.parametrize(("change", "message"), [
    ({"loss": "wasserstein"}, "loss"), ({"betas": (0.5,)}, "betas"),
    ({"betas": (0.5, 1.0)}, "betas"), ({"betas": (0.5, "x")}, "betas"),
    ({"d_lr_scale": 0.0}, "d_lr_scale")])
def test_bad_parameters_fail(change, message):
    with pytest.raises(ValueError, match=message):
        GANParams(**change)


@pytest.mark.parametrize("spectral", [False, True])
def test_each_step_reaches_only_its_own_player(spectral):
    """A discriminator step's loss has gradients on D alone and equals d_loss computed
    directly; a generator step's on G alone and equals the gradient of g_loss (computed here
    through the live discriminator, without the method's detaching)."""
    method = GANMethod(GANParams(latent_dim=8, channels=8, spectral_norm=spectral),
                       num_classes=10)
    model = method.build(seed=0).eval()  # eval: spectral norm's power iteration stays put
    real, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8)
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    fake = model.generator(z, labels)
    expected = {
        DISCRIMINATOR: discriminator_loss(model.discriminator(real, labels),
                                          model.discriminator(fake.detach(), labels), "hinge"),
        GENERATOR: generator_loss(model.discriminator(fake, labels), "hinge")}
    own = {DISCRIMINATOR: model.discriminator, GENERATOR: model.generator}
    for phase, player in own.items():
        model.zero_grad(set_to_none=True)
        out = method.loss(model, (real, labels, torch.tensor(phase)),
                          torch.Generator().manual_seed(0))
        assert torch.allclose(out.total, expected[phase], atol=1e-6)
        out.total.backward()
        other = own[1 - phase]
        assert all(p.grad is None for p in other.parameters())
        wanted = torch.autograd.grad(expected[phase], list(player.parameters()),
                                     retain_graph=True, allow_unused=True)
        for p, g in zip(player.parameters(), wanted, strict=True):
            assert (g is None and p.grad is None) or torch.allclose(p.grad, g, atol=1e-6)


def test_batches_alternate_discriminator_and_generator_steps_on_the_same_minibatch():
    method = GANMethod(GANParams(latent_dim=8, channels=8, batch_size=4), num_classes=10)
    images, labels = torch.randn(8, 1, 28, 28), torch.arange(8)
    steps = list(method.batches(images, labels)(0, torch.Generator().manual_seed(0)))
    assert [int(b[-1]) for b in steps] == [DISCRIMINATOR, GENERATOR] * 2
    for d_step, g_step in zip(steps[0::2], steps[1::2], strict=True):
        assert torch.equal(d_step[0], g_step[0]) and torch.equal(d_step[1], g_step[1])


def test_param_groups_give_each_player_its_betas_and_learning_rate():
    method = GANMethod(GANParams(latent_dim=8, channels=8, betas=(0.5, 0.9), d_lr_scale=4.0),
                       num_classes=10)
    model = method.build(seed=0)
    g_group, d_group = method.param_groups(model)
    assert {id(p) for p in g_group["params"]} == {id(p) for p in model.generator.parameters()}
    assert {id(p) for p in d_group["params"]} == {
        id(p) for p in model.discriminator.parameters()}
    assert g_group["betas"] == d_group["betas"] == (0.5, 0.9)
    assert d_group["lr_scale"] == 4.0 and "lr_scale" not in g_group


@pytest.mark.parametrize("loss", ["hinge", "non_saturating"])
def test_alternating_steps_decrease_each_loss_on_a_tiny_batch(loss):
    """fit with the method's own batches and parameter groups: after one discriminator step
    d_loss is lower, after the following generator step g_loss is lower (each measured on
    the same fakes before and after, BatchNorm statistics fixed)."""
    method = GANMethod(GANParams(loss=loss, latent_dim=8, channels=8, batch_size=8),
                       num_classes=10)
    model = method.build(seed=0)
    images, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8)
    steps = list(method.batches(images, labels)(0, torch.Generator().manual_seed(1)))

    def value(step):
        model.eval()
        out = method.loss(model, step, torch.Generator().manual_seed(5))
        return float(out.total.detach())

    config = FitConfig(epochs=1, learning_rate=1e-3, progress=False, cosine_schedule=False)
    before = [value(step) for step in steps]
    fit(model, loss_fn=lambda m, b, g: method.loss(m, b, torch.Generator().manual_seed(5)),
        batches=lambda epoch, g: steps[:1], parameters=method.param_groups(model),
        config=config)
    assert value(steps[0]) < before[0]
    g_mid = value(steps[1])
    fit(model, loss_fn=lambda m, b, g: method.loss(m, b, torch.Generator().manual_seed(5)),
        batches=lambda epoch, g: steps[1:], parameters=method.param_groups(model),
        config=config)
    assert value(steps[1]) < g_mid


def test_fit_averages_each_players_loss_over_its_own_steps():
    method = GANMethod(GANParams(latent_dim=8, channels=8, batch_size=4), num_classes=10)
    model = method.build(seed=0)
    images, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8)
    recorded: dict[str, list[float]] = {"d_loss": [], "g_loss": []}

    def loss_fn(m, b, g):
        out = method.loss(m, b, g)
        for key in recorded:
            if key in out.parts:
                recorded[key].append(float(out.parts[key]))
        return out

    result = fit(model, loss_fn=loss_fn, batches=method.batches(images, labels),
                 parameters=method.param_groups(model),
                 config=FitConfig(epochs=1, learning_rate=1e-3, progress=False))
    for key, values in recorded.items():
        assert len(values) == 2
        assert result.history[key][0] == pytest.approx(sum(values) / 2)
