"""The two-view family: SimCLR (NT-Xent), SupCon and the pair (margin) loss, written once for
every modality whose encoder gives an instance embedding.

Each step draws two augmented views of the batch, embeds both with the encoder, projects them
with the head and applies the objective. Views of time series keep the series' mask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.config import require_bool
from contrastive_signals.losses import (
    nt_xent_loss,
    pair_contrastive_loss,
    supervised_contrastive_loss,
)
from contrastive_signals.methods.base import (
    EncoderWithHead,
    HeadParams,
    InstanceEncoder,
    ProjectionHead,
    Requirements,
    StatelessHooks,
)
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.ranks import local_forward

OBJECTIVES = ("simclr", "supcon", "pair")
INSTANCE_MODALITIES = ("image", "signal", "series")
REQUIRES = Requirements(INSTANCE_MODALITIES, ("instance", "per_step"))
"""What every two-view method needs of its encoder (SupCon needs labels besides)."""


class ViewMaker(Protocol):
    """A modality's augmentation: ``two_views(x, generator=) -> (view_a, view_b)``, each the
    shape of ``x``."""

    def two_views(self, x: Tensor, *, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


@dataclass(frozen=True)
class TwoViewParams:
    """Settings of a two-view method.

    ``objective``: ``simclr`` (NT-Xent on instance identities), ``supcon`` (positives share a
    class label; needs labels) or ``pair`` (Hadsell et al.'s margin loss on the normalised
    projections, the two views of a sample being the positive pair). ``joint_forward``: both
    views in one forward pass (BatchNorm statistics over both), else one pass per view.
    """

    objective: str = "simclr"
    temperature: float = 0.2
    margin: float = 1.0
    head: HeadParams = field(default_factory=HeadParams)
    joint_forward: bool = True

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got '{self.objective}'")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.margin > 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        require_bool(self, ("joint_forward",))


def two_view_objective(z_a: Tensor, z_b: Tensor, labels: Tensor | None,
                       params: TwoViewParams) -> Tensor:
    """The objective on projections ``z_a``, ``z_b`` ``[B, P]`` of the two views of the same
    ``B`` samples (``labels`` ``[B]``: SupCon only)."""
    z_a, z_b = z_a.float(), z_b.float()
    if params.objective == "simclr":
        return nt_xent_loss(z_a, z_b, temperature=params.temperature)
    both = torch.cat([z_a, z_b])
    if params.objective == "supcon":
        if labels is None:
            raise ValueError("the supcon objective needs labels in the batch")
        return supervised_contrastive_loss(both, labels.repeat(2), temperature=params.temperature)
    instance = torch.arange(len(z_a), device=both.device).repeat(2)
    return pair_contrastive_loss(F.normalize(both, dim=1), instance, margin=params.margin)


class TwoViewMethod(StatelessHooks):
    """SimCLR / SupCon / pair over any instance (or pooled per-step) encoder.

    Batches are ``(x, [mask,] [labels])``: ``x`` ``[B, ...]`` in the modality's layout, ``mask``
    ``[B, T]`` for series, ``labels`` ``[B]`` for SupCon.
    """


    def __init__(self, params: TwoViewParams, views: ViewMaker, *, modality: str, output: str):
        if modality not in INSTANCE_MODALITIES or output not in ("instance", "per_step"):
            raise ValueError(f"two-view methods need an image/signal/series encoder with an "
                             f"instance or per-step output, got {modality}/{output}")
        self.params, self.views = params, views
        self.modality, self.output = modality, output
        self.requires = replace(REQUIRES, needs_labels=params.objective == "supcon")

    def build(self, encoder: nn.Module, *, seed: int) -> EncoderWithHead:
        """``encoder`` plus the projection head, whose weights are drawn from ``seed``."""
        instance = InstanceEncoder(encoder, self.output)
        head = self.params.head
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            projection = ProjectionHead(instance.embedding_dim, head.hidden_dim, head.out_dim,
                                        batch_norm=head.batch_norm)
        return EncoderWithHead(instance, projection)

    def split(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(x, mask, labels)`` of a batch (``None`` where absent)."""
        if self.modality == "series":
            x, mask, *rest = batch
        else:
            (x, *rest), mask = batch, None
        return x, mask, (rest[0] if rest else None)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        x, mask, labels = self.split(batch)
        view_a, view_b = self.views.two_views(x, generator=generator)

        def project(view_a: Tensor, view_b: Tensor, mask: Tensor | None,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
            if self.params.joint_forward:
                masks = None if mask is None else torch.cat([mask, mask])
                return model(torch.cat([view_a, view_b]), masks, generator).chunk(2)
            return model(view_a, mask, generator), model(view_b, mask, generator)

        # the views of the global batch; this rank projects its rows, the loss sees them all
        z_a, z_b = local_forward(project, view_a, view_b, mask, generator=generator)
        return two_view_objective(z_a, z_b, labels, self.params)

    def batches(self, *tensors: Tensor, batch_size: int
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, ...]]]:
        """Shuffled mini-batches of aligned ``tensors`` (last partial batch dropped)."""
        size = min(batch_size, len(tensors[0]))
        return lambda epoch, generator: shuffled_minibatches(*tensors, batch_size=size,
                                                             generator=generator)

    @staticmethod
    def export(model: EncoderWithHead) -> nn.Module:
        """The encoder without its head or pooling adapter (what downstream tasks use)."""
        return model.encoder.encoder
