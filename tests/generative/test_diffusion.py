"""DDPM pieces: the forward process against its closed form, DDIM with all steps against the
ancestral mean update, the schedules, and one training step."""

import pytest
import torch

from contrastive_signals.methods.diffusion import (
    Diffusion,
    DiffusionMethod,
    DiffusionParams,
    ancestral_step,
    betas,
    ddim_step,
    q_sample,
    sample,
)
from contrastive_signals.training.fit import FitConfig, fit

TINY = DiffusionParams(steps=10, channels=8, batch_size=8)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_process_matches_closed_form_mean_and_variance(schedule):
    params = DiffusionParams(steps=50, schedule=schedule)
    beta = betas(params)
    alpha_bar = torch.cumprod(1 - beta, 0)
    # the closed form equals t successive noisings x_s = sqrt(1 - b_s) x_{s-1} + sqrt(b_s) e
    x0 = torch.tensor([0.7], dtype=torch.float64)
    t = 30
    mean, var = x0.double(), torch.zeros(1, dtype=torch.float64)
    for s in range(t + 1):
        mean, var = (1 - beta[s]).sqrt() * mean, (1 - beta[s]) * var + beta[s]
    assert torch.allclose(mean, alpha_bar[t].sqrt() * x0, atol=1e-12)
    assert torch.allclose(var, 1 - alpha_bar[t], atol=1e-12)
    # and q_sample draws from it: empirical mean and variance over many draws
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(200_000, 1, generator=generator, dtype=torch.float64)
    xt = q_sample(alpha_bar, x0.expand(200_000, 1),
                  torch.full((200_000,), t), noise)
    assert abs(float(xt.mean()) - float(mean)) < 0.01
    assert abs(float(xt.var()) - float(var)) < 0.01


def test_schedules_are_valid():
    for schedule in ("linear", "cosine"):
        beta = betas(DiffusionParams(steps=100, schedule=schedule))
        assert beta.shape == (100,) and bool((beta > 0).all()) and bool((beta < 1).all())
    with pytest.raises(ValueError, match="schedule"):
        DiffusionParams(schedule="quadratic")


def test_ddim_with_all_steps_and_eta_one_is_the_ancestral_update():
    model = DiffusionMethod(TINY, num_classes=0).build(seed=0)
    generator = torch.Generator().manual_seed(1)
    x, eps = torch.randn(4, 1, 28, 28, generator=generator), torch.randn(4, 1, 28, 28,
                                                                       generator=generator)
    for t in (9, 5, 1, 0):
        mean_a, std_a = ancestral_step(model, x, eps, t)
        mean_d, std_d = ddim_step(model, x, eps, t, t - 1, eta=1.0)
        assert torch.allclose(mean_a, mean_d, atol=1e-5)
        assert std_a == pytest.approx(std_d, rel=1e-5, abs=1e-7)


def test_samplers_give_images_and_trajectory():
    model = DiffusionMethod(TINY, num_classes=10).build(seed=0)
    labels = torch.arange(3)
    for sampler in ("ancestral", "ddim"):
        images, frames = sample(model, (3, 1, 28, 28), generator=torch.Generator().manual_seed(0),
                                labels=labels, guidance=2.0, sampler=sampler, ddim_steps=4,
                                keep=3)
        assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
        assert len(frames) == 3
    with pytest.raises(ValueError, match="sampler"):
        sample(model, (1, 1, 28, 28), generator=torch.Generator(), sampler="euler")


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_one_step_decreases_the_loss_on_a_tiny_batch(prediction):
    method = DiffusionMethod(DiffusionParams(steps=10, channels=8, batch_size=8,
                                             prediction=prediction), num_classes=10)
    model = method.build(seed=0)
    assert model.prediction == prediction
    batch = (torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8))

    def fixed_loss():
        return float(method.loss(model, batch, torch.Generator().manual_seed(3)).detach())

    before = fixed_loss()
    fit(model, loss_fn=lambda m, b, g: method.loss(m, b, torch.Generator().manual_seed(3)),
        batches=lambda epoch, g: [batch],
        config=FitConfig(epochs=1, learning_rate=1e-3, progress=False, cosine_schedule=False))
    assert isinstance(model, Diffusion)
    assert fixed_loss() < before


def test_clipped_noise_keeps_the_noise_when_x0_is_in_range_and_clips_it_otherwise():
    from contrastive_signals.methods.diffusion import clipped_noise

    model = DiffusionMethod(TINY, num_classes=0).build(seed=0)
    generator = torch.Generator().manual_seed(2)
    x0 = torch.rand(2, 1, 28, 28, generator=generator) * 1.6 - 0.8
    eps = torch.randn(2, 1, 28, 28, generator=generator)
    t = 5
    xt = q_sample(model.alpha_bar, x0, torch.full((2,), t), eps)
    assert torch.allclose(clipped_noise(model, xt, eps, t), eps, atol=1e-4)
    abar = model.alpha_bar[t]
    wild = clipped_noise(model, xt, eps + 50, t)
    assert ((xt - (1 - abar).sqrt() * wild) / abar.sqrt()).abs().max() <= 1 + 1e-4


@pytest.mark.parametrize("t", [0, 5, 9])
def test_v_target_gives_back_the_noise_and_the_clean_image(t):
    # v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022): from x_t and v the sampler
    # must recover eps = sqrt(abar) v + sqrt(1 - abar) x_t and x0 = sqrt(abar) x_t - sqrt(1 - abar) v
    model = DiffusionMethod(DiffusionParams(steps=10, channels=8, schedule="cosine",
                                            prediction="v"), num_classes=0).build(seed=0)
    generator = torch.Generator().manual_seed(4)
    x0 = torch.rand(3, 1, 28, 28, generator=generator) * 2 - 1
    eps = torch.randn(3, 1, 28, 28, generator=generator)
    steps = torch.full((3,), t)
    xt = q_sample(model.alpha_bar, x0, steps, eps)
    v = model.target(x0, eps, steps)
    abar = model.alpha_bar[t]
    assert torch.allclose(v, abar.sqrt() * eps - (1 - abar).sqrt() * x0)
    assert torch.allclose(model.noise_of(xt, v, t), eps, atol=1e-5)
    assert torch.allclose(abar.sqrt() * xt - (1 - abar).sqrt() * v, x0, atol=1e-5)
    eps_model = DiffusionMethod(TINY, num_classes=0).build(seed=0)
    assert torch.equal(eps_model.target(x0, eps, steps), eps)
    assert torch.equal(eps_model.noise_of(xt, v, t), v)


def test_guidance_of_a_v_model_is_guidance_of_its_noise():
    from contrastive_signals.methods.diffusion import guided_noise

    model = DiffusionMethod(DiffusionParams(steps=10, channels=8, prediction="v"),
                            num_classes=10).build(seed=0)
    model.eval()
    generator = torch.Generator().manual_seed(5)
    x, labels, t = torch.randn(4, 1, 28, 28, generator=generator), torch.arange(4), 7
    steps = torch.full((4,), t)
    with torch.no_grad():
        cond = model.noise_of(x, model(x, steps, labels), t)
        uncond = model.noise_of(x, model(x, steps, torch.full_like(labels, 10)), t)
        guided = guided_noise(model, x, t, labels, guidance=1.5)
    assert torch.allclose(guided, 2.5 * cond - 1.5 * uncond, atol=1e-5)


def test_an_unknown_prediction_is_refused():
    with pytest.raises(ValueError, match="prediction"):
        DiffusionParams(prediction="x0")
