"""TS2Vec's hierarchical contrastive method (Yue et al. 2022) over any per-step series encoder.

Each step crops two overlapping random windows of every series (``contextual_crop_views``),
encodes both per time step and applies the hierarchical loss to the overlap. With the same seed
it makes the random draws of the authors' training loop, in their order (weights, crops,
timestamp masks, shuffling, dropout: see :mod:`._ts2vec_draws`), so it trains the same network.
The weight average TS2Vec evaluates is :class:`~.averaging.WeightAveraging` around this method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from contrastive_signals.losses.decorrelation import decorrelation_penalty
from contrastive_signals.losses.hierarchical_contrastive import (
    contextual_crop_views,
    hierarchical_contrastive_loss,
)
from contrastive_signals.methods._ts2vec_draws import Ts2VecDraws, ts2vec_torch_seed
from contrastive_signals.methods.base import Requirements, StatelessHooks
from contrastive_signals.models.registry import build_model_with_rng_state
from contrastive_signals.training.batches import minibatches
from contrastive_signals.training.ranks import local_forward

REQUIRES = Requirements(("series",), ("per_step",))
DECORRELATION_ROWS = 256
"""The decorrelation penalty of a view is estimated from at most this many of its ``B x L``
per-step rows (every k-th): its cost stays a small share of a step on long crops."""


@dataclass(frozen=True)
class Ts2VecParams:
    """``alpha``: weight of the instance term (``1 - alpha``: temporal term);
    ``temporal_unit``: the first pooling scale with a temporal term (and the minimum crop
    length ``2 ** (temporal_unit + 1)``); ``decorrelation``: weight of the feature-decorrelation
    penalty on the overlap's per-step representations (:mod:`..losses.decorrelation`; 0, the
    default, is TS2Vec's objective and computes nothing)."""

    alpha: float = 0.5
    temporal_unit: int = 0
    decorrelation: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.temporal_unit < 0:
            raise ValueError(f"temporal_unit must be >= 0, got {self.temporal_unit}")
        if not self.decorrelation >= 0:  # also refuses NaN
            raise ValueError(f"decorrelation must be >= 0, got {self.decorrelation}")


def centre_padded_series(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Move each series of ``x`` ``[N, T, C]`` (mask ``[N, T]``) so that its padding is split
    between both ends (the extra step, if any, at the end), as TS2Vec does with its training
    set when some series are shorter than others. Returns new ``(x, mask)``; padding stays 0.

    Assumes each series' valid steps are contiguous (padding before and/or after them).
    """
    n, t = mask.shape
    steps = torch.arange(t)
    first = torch.where(mask, steps, t).amin(1)  # leading padding, [N]
    trailing = t - 1 - torch.where(mask, steps, -1).amax(1)  # trailing padding, [N]
    shift = (first + trailing) // 2 - first  # > 0 moves the series right
    source = steps.view(1, t) - shift.view(n, 1)  # [N, T]: where each new step reads from
    inside = (source >= 0) & (source < t)
    rows = torch.arange(n).view(n, 1)
    centred_mask = mask[rows, source.clamp(0, t - 1)] & inside
    centred = torch.where(centred_mask.unsqueeze(-1), x[rows, source.clamp(0, t - 1)], 0.0)
    return centred.to(x.dtype), centred_mask


def _encode_view(encoder: nn.Module, x: Tensor, mask: Tensor, draws: Ts2VecDraws) -> Tensor:
    """``encoder``'s training-mode output ``[B, T, D]`` for one crop ``x`` ``[B, T, C]``:
    encoders with TS2Vec's timestamp masking (``mask_p > 0``, a ``keep`` argument) get the
    mask drawn from the numpy stream; dropout draws from the torch stream. Under data
    parallelism the crop and the mask are the global batch's; this rank encodes its rows."""
    if getattr(encoder, "mask_p", 0) > 0:
        keep = draws.timestamp_keep(*mask.shape, keep_p=1 - encoder.mask_p)
        return local_forward(lambda x, mask, keep, generator: encoder(x, mask, generator,
                                                                      keep=keep),
                             x, mask, keep, generator=draws.torch)
    return local_forward(encoder, x, mask, generator=draws.torch)


class Ts2VecMethod(StatelessHooks):
    """TS2Vec on a per-step encoder ``[B, T, C] + mask [B, T] -> [B, T, D]``.

    Build the encoder with :meth:`build_encoder` (weights drawn as the authors' run draws
    them, with the method's random streams continuing from there); batches are ``(x, mask)``.
    """

    requires = REQUIRES

    def __init__(self, params: Ts2VecParams, *, seed: int):
        self.params, self.seed = params, seed
        self._draws: Ts2VecDraws | None = None

    def build_encoder(self, architecture: str, config: dict[str, Any]) -> nn.Module:
        """``architecture`` with its weights from torch seeded as the authors' run with
        ``seed`` seeds it (``seed + 2``); crops, masks, shuffling and dropout follow."""
        encoder, state = build_model_with_rng_state(architecture, config,
                                                    seed=ts2vec_torch_seed(self.seed))
        self._draws = Ts2VecDraws.after_weights(self.seed, state)
        return encoder

    def state_dict(self) -> dict[str, Any]:
        """The random streams' positions (for a checkpoint)."""
        return self._require_draws().state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._require_draws().load_state_dict(state)

    def _require_draws(self) -> Ts2VecDraws:
        if self._draws is None:
            raise RuntimeError("build the encoder with Ts2VecMethod.build_encoder first: "
                               "TS2Vec's draws continue the weights' random stream")
        return self._draws

    def build(self, encoder: nn.Module, *, seed: int = 0) -> nn.Module:
        """The encoder itself (TS2Vec has no head); ``seed`` is unused."""
        self._require_draws()
        return encoder

    def overlap_views(self, model: nn.Module, x: Tensor, mask: Tensor
                      ) -> tuple[Tensor, Tensor]:
        """``model``'s per-step representations ``(z1, z2)``, each ``[B, L, D]``, of the overlap
        of two random crops of ``x`` ``[B, T, C]`` (mask ``[B, T]``), aligned in time: TS2Vec's
        crops, timestamp masks and dropout, drawn from its streams."""
        draws = self._require_draws()
        x1, m1, x2, m2, overlap = contextual_crop_views(
            x, mask, generator=draws.numpy, temporal_unit=self.params.temporal_unit)
        z1 = _encode_view(model, x1, m1, draws)[:, -overlap:]
        z2 = _encode_view(model, x2, m2, draws)[:, :overlap]
        return z1, z2

    def with_decorrelation(self, loss: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
        """``loss`` plus ``decorrelation`` times the mean of both views' decorrelation
        penalties; ``loss`` itself when the weight is 0."""
        if self.params.decorrelation == 0:
            return loss
        penalty = (decorrelation_penalty(z1, max_rows=DECORRELATION_ROWS)
                   + decorrelation_penalty(z2, max_rows=DECORRELATION_ROWS)) / 2
        return loss + self.params.decorrelation * penalty

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor:
        """Hierarchical loss of the two crops' overlap (plus the decorrelation penalty when
        its weight is > 0); ``generator`` is unused (TS2Vec's own streams draw)."""
        z1, z2 = self.overlap_views(model, *batch)
        loss = hierarchical_contrastive_loss(z1, z2, alpha=self.params.alpha,
                                             temporal_unit=self.params.temporal_unit)
        return self.with_decorrelation(loss, z1, z2)

    def batches(self, x: Tensor, mask: Tensor, *, batch_size: int
                ) -> Callable[[int, torch.Generator], Iterator[tuple[Tensor, Tensor]]]:
        """Each epoch: batches of ``min(batch_size, N)`` series ``(x [B, T, C], mask [B, T])``
        in the order TS2Vec's ``DataLoader(shuffle=True)`` draws, last partial batch dropped.
        Unequal-length series are centred in the padded array first, as TS2Vec trains them
        (so that random crops meet padding on both sides)."""
        draws = self._require_draws()
        if not (mask[:, 0].all() and mask[:, -1].all()):
            x, mask = centre_padded_series(x, mask)
        size = min(batch_size, len(x))

        def epoch(epoch: int, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
            yield from minibatches(x, mask, order=draws.epoch_order(len(x)), batch_size=size)

        return epoch

    @staticmethod
    def export(model: nn.Module) -> nn.Module:
        return model
