"""A GAN (DCGAN-style, Radford et al. 2016) as a method of the one fit loop.

The two players take turns, as in DCGAN: every minibatch is yielded twice by
:meth:`GANMethod.batches`, first for a discriminator step, then for a generator step (the
phase is the batch's last element). Each step's loss reaches only its own player: the
discriminator step draws the fakes without a graph, and the generator step runs the
discriminator with *detached* parameters (``torch.func.functional_call``). fit keeps its one
optimiser, built from :meth:`GANMethod.param_groups`: a group per player with Adam's
``betas`` (DCGAN's (0.5, 0.999)) and a learning-rate factor, so a player whose gradient is
``None`` in a step is left alone by it (torch's Adam skips such parameters: its moments and
step count advance on its own steps only) -- two optimisers in effect, one loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from contrastive_signals.methods.base import StatelessMethod
from contrastive_signals.models.generative import DCGANDiscriminator, DCGANGenerator
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.fit import LossOutput

LOSSES = ("non_saturating", "hinge")
DISCRIMINATOR, GENERATOR = 0, 1  # the phase of a step (last element of a batch)


@dataclass(frozen=True)
class GANParams:
    """``loss``: ``non_saturating`` or ``hinge``; ``spectral_norm`` on the discriminator;
    ``conditional`` on the class (projection discriminator). Optimiser per player: Adam's
    ``betas`` and the discriminator's learning rate as ``d_lr_scale`` times the generator's
    (fit's ``learning_rate``; 1: DCGAN's equal rates, > 1: the two time-scale rule)."""

    loss: str = "hinge"
    latent_dim: int = 64
    channels: int = 64
    conditional: bool = True
    spectral_norm: bool = True
    batch_size: int = 64
    betas: tuple[float, float] = (0.5, 0.999)
    d_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got '{self.loss}'")
        if self.latent_dim < 1 or self.channels < 1 or self.batch_size < 2:
            raise ValueError(f"latent_dim and channels must be >= 1 and batch_size >= 2, got "
                             f"{self.latent_dim}, {self.channels}, {self.batch_size}")
        if len(self.betas) != 2 or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not self.d_lr_scale > 0:
            raise ValueError(f"d_lr_scale must be > 0, got {self.d_lr_scale}")


def discriminator_loss(real: Tensor, fake: Tensor, kind: str) -> Tensor:
    """From logits ``[B]``: non-saturating ``E softplus(-D(x)) + E softplus(D(G(z)))``
    (= ``-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))``), hinge
    ``E relu(1 - D(x)) + E relu(1 + D(G(z)))``."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake: Tensor, kind: str) -> Tensor:
    """Non-saturating ``E softplus(-D(G(z)))`` (= ``-log sigmoid``), hinge ``-E D(G(z))``."""
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


class GAN(nn.Module):
    """Generator and discriminator in one module (what fit trains)."""

    def __init__(self, generator: DCGANGenerator, discriminator: DCGANDiscriminator):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(z, labels)


class GANMethod(StatelessMethod):
    """Batches ``(images [B, 1, 28, 28] in [-1, 1], labels [B], phase [])``, each minibatch
    once per phase (discriminator, then generator); loss parts ``d_loss``, ``d_real``,
    ``d_fake`` (mean logits) on discriminator steps and ``g_loss`` on generator steps go to
    the history (``train_loss`` averages both players' losses and means little)."""

    def __init__(self, params: GANParams, *, num_classes: int):
        self.params = params
        self.num_classes = num_classes if params.conditional else 0

    def build(self, encoder: nn.Module | None = None, *, seed: int) -> GAN:
        p = self.params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return GAN(DCGANGenerator(p.latent_dim, p.channels, self.num_classes),
                       DCGANDiscriminator(p.channels, self.num_classes, p.spectral_norm))

    def param_groups(self, model: GAN) -> list[dict[str, Any]]:
        """One optimiser group per player (fit's optimiser is built from these)."""
        betas = tuple(self.params.betas)
        return [{"params": list(model.generator.parameters()), "betas": betas},
                {"params": list(model.discriminator.parameters()), "betas": betas,
                 "lr_scale": self.params.d_lr_scale}]

    def _fakes(self, model: GAN, count: int, labels: Tensor | None,
               generator: torch.Generator, device: torch.device) -> Tensor:
        z = torch.randn(count, self.params.latent_dim, generator=generator).to(device)
        return model.generator(z, labels)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> LossOutput:
        """The loss of the player whose turn it is (``batch[-1]``), reaching only its weights."""
        real, labels, phase = batch
        y = labels if self.num_classes else None
        disc = model.discriminator
        if int(phase) == DISCRIMINATOR:
            with torch.no_grad():
                fake = self._fakes(model, len(real), y, generator, real.device)
            d_real, d_fake = disc(real, y), disc(fake, y)
            d_loss = discriminator_loss(d_real, d_fake, self.params.loss)
            return LossOutput(d_loss, {"d_loss": d_loss.detach(),
                                       "d_real": d_real.mean().detach(),
                                       "d_fake": d_fake.mean().detach()})
        fake = self._fakes(model, len(real), y, generator, real.device)
        frozen = {name: value.detach() for name, value in disc.named_parameters()}
        g_loss = generator_loss(functional_call(disc, frozen, (fake, y)), self.params.loss)
        return LossOutput(g_loss, {"g_loss": g_loss.detach()})

    def batches(self, images: Tensor, labels: Tensor
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, ...]]]:
        """Each shuffled minibatch twice: a discriminator step, then a generator step."""
        size = min(self.params.batch_size, len(images))
        phases = (torch.tensor(DISCRIMINATOR), torch.tensor(GENERATOR))

        def epoch_batches(epoch: int, generator: torch.Generator) -> Iterator[tuple[Tensor, ...]]:
            for batch in shuffled_minibatches(images, labels, batch_size=size,
                                              generator=generator):
                for phase in phases:
                    yield (*batch, phase)

        return epoch_batches


@torch.no_grad()
def sample_gan(model: GAN, labels: Tensor, *, generator: torch.Generator,
               conditional: bool) -> Tensor:
    """Images ``[B, 1, 28, 28]`` for ``labels`` ``[B]`` (ignored when unconditional)."""
    model.eval()
    device = next(model.parameters()).device
    z = torch.randn(len(labels), model.generator.latent_dim, generator=generator).to(device)
    return model.generator(z, labels.to(device) if conditional else None).cpu()
