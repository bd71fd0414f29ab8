"""Denoising diffusion (DDPM, Ho et al. 2020) as a method of the one fit loop: the noise
schedule, the forward process in closed form, the epsilon- or v-prediction loss (with label
dropout for classifier-free guidance) and two samplers, ancestral and DDIM (Song et al.
2021). Images are ``[B, 1, H, W]`` in [-1, 1]."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.methods.base import StatelessMethod
from contrastive_signals.models.generative import SmallUNet
from contrastive_signals.training.batches import shuffled_minibatches

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")


def check_prediction(prediction: str) -> None:
    """Raise ``ValueError`` unless ``prediction`` is one of :data:`PREDICTIONS` (the
    parameters and the model both call it)."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got '{prediction}'")


@dataclass(frozen=True)
class DiffusionParams:
    """``steps`` T of the schedule (``linear``: betas from ``beta_start`` to ``beta_end``;
    ``cosine``: Nichol & Dhariwal 2021); U-Net width ``channels``; ``conditional`` on the
    class with labels dropped with probability ``label_dropout`` (the unconditional model of
    classifier-free guidance). ``prediction``: what the network outputs, the noise (``eps``,
    Ho et al.) or the velocity ``v = sqrt(abar) eps - sqrt(1 - abar) x_0`` (``v``, Salimans &
    Ho 2022), which stays informative about ``x_0`` where ``abar_t`` is near 0 (the last
    steps of the cosine schedule, where the sampler starts)."""

    steps: int = 200
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    channels: int = 32
    conditional: bool = True
    label_dropout: float = 0.1
    batch_size: int = 64
    prediction: str = "eps"

    def __post_init__(self) -> None:
        check_prediction(self.prediction)
        if self.steps < 2:
            raise ValueError(f"steps must be >= 2, got {self.steps}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got '{self.schedule}'")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, "
                             f"{self.beta_end}")
        if not 0 <= self.label_dropout < 1:
            raise ValueError(f"label_dropout must lie in [0, 1), got {self.label_dropout}")
        if self.channels < 8 or self.batch_size < 2:
            raise ValueError(f"channels must be >= 8 and batch_size >= 2, got {self.channels}, "
                             f"{self.batch_size}")


def betas(params: DiffusionParams) -> Tensor:
    """The noise schedule ``[T]`` (float64)."""
    if params.schedule == "linear":
        return torch.linspace(params.beta_start, params.beta_end, params.steps,
                              dtype=torch.float64)
    s, steps = 0.008, params.steps
    f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s)
                  * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


def per_sample(schedule: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """``schedule[t]`` for steps ``t`` ``[B]``, shaped ``[B, 1, ...]`` to broadcast over
    ``like`` ``[B, ...]``."""
    return schedule[t].view(-1, *([1] * (like.dim() - 1)))


class Diffusion(nn.Module):
    """The denoising network with its schedule (buffers ``betas``, ``alpha_bar`` ``[T]``)
    and what the network predicts (``prediction``: ``eps`` or ``v``)."""

    def __init__(self, net: nn.Module, schedule: Tensor, num_classes: int = 0,
                 prediction: str = "eps"):
        super().__init__()
        check_prediction(prediction)
        self.net, self.num_classes, self.prediction = net, num_classes, prediction
        self.register_buffer("betas", schedule.float())
        self.register_buffer("alpha_bar", torch.cumprod(1 - schedule, 0).float())

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        """The network's output ``[B, 1, H, W]`` for ``x_t`` at steps ``t`` ``[B]``: the
        predicted noise, or the predicted velocity (``prediction == "v"``)."""
        return self.net(x, t, labels)

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the network is trained to output for ``x_t = q_sample(x0, t, noise)``:
        ``noise``, or ``v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0`` (all ``[B, ...]``)."""
        if self.prediction == "eps":
            return noise
        a = per_sample(self.alpha_bar, t, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def noise_of(self, x: Tensor, output: Tensor, t: int) -> Tensor:
        """The noise implied by the network's ``output`` for ``x`` ``[B, ...]`` at step ``t``
        (for ``v``: ``eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t``)."""
        if self.prediction == "eps":
            return output
        abar = self.alpha_bar[t]
        return abar.sqrt() * output + (1 - abar).sqrt() * x


def q_sample(alpha_bar: Tensor, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``: ``x0``, ``noise`` ``[B, ...]``,
    ``t`` ``[B]``."""
    a = per_sample(alpha_bar, t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def ancestral_step(model: Diffusion, x: Tensor, eps: Tensor, t: int) -> tuple[Tensor, float]:
    """The mean of ``p(x_{t-1} | x_t)`` and its standard deviation (the posterior's,
    ``beta~_t``) given the predicted noise ``eps``."""
    beta, abar = model.betas[t], model.alpha_bar[t]
    mean = (x - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt()
    abar_prev = model.alpha_bar[t - 1] if t > 0 else torch.ones_like(abar)
    return mean, float((beta * (1 - abar_prev) / (1 - abar)).sqrt())


def ddim_step(model: Diffusion, x: Tensor, eps: Tensor, t: int, t_prev: int, eta: float
              ) -> tuple[Tensor, float]:
    """DDIM's update from ``t`` to ``t_prev`` (``-1``: to x_0) -> (mean, std). With
    ``eta = 1`` and ``t_prev = t - 1`` this is the ancestral step."""
    abar = model.alpha_bar[t]
    abar_prev = model.alpha_bar[t_prev] if t_prev >= 0 else torch.ones_like(abar)
    x0 = (x - (1 - abar).sqrt() * eps) / abar.sqrt()
    sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
    mean = abar_prev.sqrt() * x0 + (1 - abar_prev - sigma ** 2).clamp(min=0).sqrt() * eps
    return mean, float(sigma)


def guided_noise(model: Diffusion, x: Tensor, t: int, labels: Tensor | None,
                 guidance: float) -> Tensor:
    """``(1 + w) eps(x, y) - w eps(x, none)`` (classifier-free guidance, ``w = guidance``).
    The guidance combines the network's outputs; for ``v`` the noise is affine in ``v`` with
    weights summing to 1, so guiding ``v`` is guiding ``eps``."""
    steps = torch.full((len(x),), t, dtype=torch.long, device=x.device)
    if labels is None or guidance == 0:
        return model.noise_of(x, model(x, steps, labels), t)
    null = torch.full_like(labels, model.num_classes)
    both = model(torch.cat([x, x]), torch.cat([steps, steps]), torch.cat([labels, null]))
    cond, uncond = both.chunk(2)
    return model.noise_of(x, (1 + guidance) * cond - guidance * uncond, t)


def clipped_noise(model: Diffusion, x: Tensor, eps: Tensor, t: int) -> Tensor:
    """The noise consistent with the predicted ``x_0`` clipped to [-1, 1] (the usual
    "clip_denoised" of DDPM/DDIM samplers; keeps early steps, where ``abar_t`` is tiny, from
    blowing up)."""
    abar = model.alpha_bar[t]
    x0 = ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)
    return (x - abar.sqrt() * x0) / (1 - abar).sqrt()


@torch.no_grad()
def sample(model: Diffusion, shape: tuple[int, ...], *, generator: torch.Generator,
           labels: Tensor | None = None, guidance: float = 0.0, sampler: str = "ancestral",
           ddim_steps: int = 50, eta: float = 0.0, keep: int = 0, clip: bool = True
           ) -> tuple[Tensor, list[Tensor]]:
    """Draw images ``shape`` = ``[B, 1, H, W]`` from ``x_T ~ N(0, I)`` (noise from the CPU
    ``generator``) -> (images clamped to [-1, 1], ``keep`` intermediate ``x_t`` evenly spread
    over the trajectory, the first being ``x_T``). ``clip``: predicted ``x_0`` clipped to
    [-1, 1] at every step (:func:`clipped_noise`)."""
    model.eval()
    device = model.betas.device
    steps = len(model.betas)
    if sampler == "ancestral":
        times = list(range(steps - 1, -1, -1))
    elif sampler == "ddim":
        times = sorted({int(round(v)) for v in torch.linspace(0, steps - 1, ddim_steps).tolist()},
                       reverse=True)
    else:
        raise ValueError(f"sampler must be 'ancestral' or 'ddim', got '{sampler}'")
    x = torch.randn(shape, generator=generator).to(device)
    marks = {int(round(i)) for i in torch.linspace(0, len(times) - 1, keep).tolist()} if keep else set()
    trajectory = []
    for i, t in enumerate(times):
        if i in marks:
            trajectory.append(x.cpu())
        eps = guided_noise(model, x, t, labels, guidance)
        if clip:
            eps = clipped_noise(model, x, eps, t)
        if sampler == "ancestral":
            mean, std = ancestral_step(model, x, eps, t)
        else:
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            mean, std = ddim_step(model, x, eps, t, t_prev, eta)
        last = i + 1 == len(times)
        x = mean if last or std == 0 else mean + std * torch.randn(
            shape, generator=generator).to(device)
    return x.clamp(-1, 1).cpu(), trajectory


class DiffusionMethod(StatelessMethod):
    """DDPM training through :func:`~contrastive_signals.training.fit.fit`: batches
    ``(images [B, 1, H, W], labels [B])``, loss ``|eps - eps_theta(x_t, t, y)|^2`` with ``t``
    uniform and labels replaced by the null class with probability ``label_dropout``; with
    ``prediction: v`` the target is the velocity (:meth:`Diffusion.target`)."""

    def __init__(self, params: DiffusionParams, *, num_classes: int):
        self.params = params
        self.num_classes = num_classes if params.conditional else 0

    def build(self, encoder: nn.Module | None = None, *, seed: int) -> Diffusion:
        """A fresh U-Net (weights from ``seed``) with the schedule; ``encoder`` is unused."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = SmallUNet(self.params.channels, self.num_classes)
        return Diffusion(net, betas(self.params), self.num_classes, self.params.prediction)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        x0, labels = batch
        t = torch.randint(0, len(model.betas), (len(x0),), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        y = None
        if self.num_classes:
            drop = torch.rand(len(x0), generator=generator).to(x0.device) < self.params.label_dropout
            y = torch.where(drop, torch.full_like(labels, self.num_classes), labels)
        output = model(q_sample(model.alpha_bar, x0, t, noise), t, y).float()
        return F.mse_loss(output, model.target(x0, noise, t))

    def batches(self, images: Tensor, labels: Tensor
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, ...]]]:
        size = min(self.params.batch_size, len(images))
        return lambda epoch, generator: shuffled_minibatches(images, labels, batch_size=size,
                                                             generator=generator)
