"""What every method shares: what it requires of an encoder, the loss output it hands to
``fit``, the adapter that turns any encoder of a modality into an instance embedder, and the
projection head.

A *method* (SimCLR, SupCon, pair, triplet, TS2Vec, wav2vec, HVAE split, supervised) is written
once and takes an encoder from :mod:`contrastive_signals.models.registry` and a view
augmentation of the encoder's modality. It exposes what :func:`~contrastive_signals.training.fit.fit`
needs:

- ``build(encoder) -> nn.Module``: the trained module (holds ``.encoder`` plus the method's
  heads);
- ``loss(model, batch, generator) -> Tensor | LossOutput``: fit's ``loss_fn``;
- ``batches(...) -> (epoch, generator) -> Iterable[batch]``: fit's ``batches``;
- ``on_step_end(model, step)`` / ``on_epoch_end(model, epoch) -> dict``: method state
  (SWA averages, schedules), stepped by fit (:class:`~contrastive_signals.training.fit.FitHooks`);
- ``export(model) -> nn.Module``: what gets bundled, usually ``model.encoder``;
- optionally ``param_groups(model) -> list[dict] | None``: the optimiser's parameter groups
  (torch's ``params`` plus per-group settings such as ``betas`` and ``lr_scale``, a factor
  on fit's scheduled learning rate), e.g. one group per player of a GAN; None or absent: all
  parameters in one group.

Methods never import Kedro or MLflow and take randomness only from the generator fit passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from contrastive_signals.models.registry import EncoderEntry, get_entry, list_encoders
from contrastive_signals.models.ts_encoders import max_pool_time
from contrastive_signals.training.fit import (
    BatchesFn,
    FitConfig,
    FitResult,
    LossOutput,
    ValidateFn,
    fit,
)


@dataclass(frozen=True)
class Requirements:
    """What a method needs of its encoder and data."""

    modalities: tuple[str, ...]
    outputs: tuple[str, ...]
    needs_labels: bool = False


def check_compatible(method: str, requires: Requirements, architecture: str) -> EncoderEntry:
    """The registry entry of ``architecture``; a ``ValueError`` naming the method and the
    encoder when the encoder does not fit the method (raised while parameters are parsed)."""
    entry = get_entry(architecture)
    if entry.modality not in requires.modalities or entry.output not in requires.outputs:
        valid = [name for modality in requires.modalities for name in list_encoders(modality)
                 if get_entry(name).output in requires.outputs]
        raise ValueError(
            f"method '{method}' needs an encoder of {'/'.join(requires.modalities)} data with "
            f"output {'/'.join(requires.outputs)}; '{architecture}' reads {entry.modality} data "
            f"and returns {entry.output}. Encoders that fit: {sorted(valid)}")
    return entry


class InstanceEncoder(nn.Module):
    """Any registered encoder as ``forward(x, mask=None, generator=None) -> [B, D]``.

    ``instance`` encoders use their ``embed`` (or ``forward``); ``per_step`` time-series
    encoders get max-over-valid-time pooling. ``generator`` reaches encoders whose dropout
    draws from it (the time-series encoders).
    """

    def __init__(self, encoder: nn.Module, output: str):
        super().__init__()
        if output not in ("instance", "per_step"):
            raise ValueError(f"an instance embedding needs an instance or per_step encoder, got "
                             f"output '{output}'")
        self.encoder = encoder
        self.per_step = output == "per_step"
        self.embedding_dim = int(encoder.embedding_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """``x`` ``[B, ...]`` (mask ``[B, T]`` for series) -> ``[B, embedding_dim]``."""
        if self.per_step:
            return max_pool_time(self.encoder(x, mask, generator), mask)
        return self.encoder.embed(x) if hasattr(self.encoder, "embed") else self.encoder(x)


class StatelessHooks:
    """Fit hooks of a method with no state to step (see training.fit.FitHooks)."""

    def on_step_end(self, model: nn.Module, step: int) -> None:
        """Nothing to step."""

    def on_epoch_end(self, model: nn.Module, epoch: int) -> dict[str, float]:
        return {}


@dataclass(frozen=True)
class HeadParams:
    """A projection head ``Linear -> [BatchNorm] -> ReLU -> Linear`` (SimCLR's g(h))."""

    hidden_dim: int = 256
    out_dim: int = 64
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.hidden_dim < 1 or self.out_dim < 1:
            raise ValueError(f"hidden_dim and out_dim must be >= 1, got {self.hidden_dim}, "
                             f"{self.out_dim}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")


class ProjectionHead(nn.Module):
    """SimCLR's non-linear projection g(h): Linear -> [BN] -> ReLU -> Linear.

    The loss sees ``g(h)``; downstream tasks use ``h``, which keeps more information.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 128, out_dim: int = 64, *,
                 batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, embeddings: Tensor) -> Tensor:
        """``[B, in_dim]`` -> ``[B, out_dim]``."""
        return self.net(embeddings)


class EncoderWithHead(nn.Module):
    """An instance encoder followed by a head: ``forward`` returns the head's output, ``embed``
    the encoder's (the representation used downstream)."""

    def __init__(self, encoder: InstanceEncoder, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def embed(self, x: Tensor, mask: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
        """``[B, ...]`` -> ``[B, encoder.embedding_dim]``."""
        return self.encoder(x, mask, generator)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """``[B, ...]`` -> head output ``[B, out_dim]``."""
        return self.head(self.encoder(x, mask, generator))


class Method(Protocol):
    """What :func:`fit_method` needs of a method (see the module docstring)."""

    requires: Requirements

    def build(self, encoder: nn.Module, *, seed: int) -> nn.Module: ...

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> Tensor | LossOutput: ...

    def on_step_end(self, model: nn.Module, step: int) -> None: ...

    def on_epoch_end(self, model: nn.Module, epoch: int) -> dict[str, float]: ...

    def export(self, model: nn.Module) -> nn.Module: ...


def fit_method(method: Method, encoder: nn.Module, *, batches: BatchesFn, config: FitConfig,
               seed: int, validate: ValidateFn | None = None) -> tuple[nn.Module, FitResult]:
    """Build ``method`` around ``encoder`` (heads drawn from ``seed``), train it with the one
    fit loop (the method's loss and hooks) and return ``(exported module, fit result)``."""
    model = method.build(encoder, seed=seed)
    groups = getattr(method, "param_groups", None)
    result = fit(model, loss_fn=method.loss, batches=batches, config=config, validate=validate,
                 parameters=groups(model) if groups is not None else None, hooks=method)
    return method.export(result.model), result


class StatelessMethod(StatelessHooks):
    """The hooks of a method without state of its own (a plain supervised loss): nothing after
    a step or an epoch, and the whole trained model is what gets bundled."""

    def export(self, model: nn.Module) -> nn.Module:
        """The whole model."""
        return model
