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


def test_one_step_decreases_the_loss_on_a_tiny_batch():
    method = DiffusionMethod(TINY, num_classes=10)
    model = method.build(seed=0)
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
