"""A GAN (DCGAN-style, Radford et al. 2016) as a method of the one fit loop.

fit keeps one optimiser; the GAN needs two players. The loss returns
``d_loss + g_loss`` where the discriminator sees the fakes detached (its loss reaches only
its own weights) and the generator's loss runs the discriminator with *detached*
parameters (``torch.func.functional_call``), so its gradient reaches only the generator.
One optimiser step is then a simultaneous gradient step of both players: no change to fit
and none to the other methods."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from contrastive_signals.methods.base import StatelessMethod
from contrastive_signals.models.generative import DCGANDiscriminator, DCGANGenerator
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.fit import LossOutput

LOSSES = ("non_saturating", "hinge")


@dataclass(frozen=True)
class GANParams:
    """``loss``: ``non_saturating`` or ``hinge``; ``spectral_norm`` on the discriminator;
    ``conditional`` on the class (projection discriminator)."""

    loss: str = "hinge"
    latent_dim: int = 64
    channels: int = 64
    conditional: bool = True
    spectral_norm: bool = True
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got '{self.loss}'")
        if self.latent_dim < 1 or self.channels < 1 or self.batch_size < 2:
            raise ValueError(f"latent_dim and channels must be >= 1 and batch_size >= 2, got "
                             f"{self.latent_dim}, {self.channels}, {self.batch_size}")


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
    """Batches ``(images [B, 1, 28, 28] in [-1, 1], labels [B])``; loss parts ``d_loss``,
    ``g_loss``, ``d_real`` and ``d_fake`` (mean logits) go to the history."""

    def __init__(self, params: GANParams, *, num_classes: int):
        self.params = params
        self.num_classes = num_classes if params.conditional else 0

    def build(self, encoder: nn.Module | None = None, *, seed: int) -> GAN:
        p = self.params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return GAN(DCGANGenerator(p.latent_dim, p.channels, self.num_classes),
                       DCGANDiscriminator(p.channels, self.num_classes, p.spectral_norm))

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> LossOutput:
        real, labels = batch
        y = labels if self.num_classes else None
        z = torch.randn(len(real), self.params.latent_dim, generator=generator).to(real.device)
        fake = model.generator(z, y)
        disc = model.discriminator
        d_real, d_fake = disc(real, y), disc(fake.detach(), y)
        frozen = {name: value.detach() for name, value in disc.named_parameters()}
        g_fake = functional_call(disc, frozen, (fake, y))
        d_loss = discriminator_loss(d_real, d_fake, self.params.loss)
        g_loss = generator_loss(g_fake, self.params.loss)
        return LossOutput(d_loss + g_loss, {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                                            "d_real": d_real.mean().detach(),
                                            "d_fake": d_fake.mean().detach()})

    def batches(self, images: Tensor, labels: Tensor
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, ...]]]:
        size = min(self.params.batch_size, len(images))
        return lambda epoch, generator: shuffled_minibatches(images, labels, batch_size=size,
                                                             generator=generator)


@torch.no_grad()
def sample_gan(model: GAN, labels: Tensor, *, generator: torch.Generator,
               conditional: bool) -> Tensor:
    """Images ``[B, 1, 28, 28]`` for ``labels`` ``[B]`` (ignored when unconditional)."""
    model.eval()
    device = next(model.parameters()).device
    z = torch.randn(len(labels), model.generator.latent_dim, generator=generator).to(device)
    return model.generator(z, labels.to(device) if conditional else None).cpu()
