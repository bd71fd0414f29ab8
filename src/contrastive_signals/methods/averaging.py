"""Weight averaging around any method, as method state stepped by fit's hooks instead of a
closure counter: the equal-weight running average TS2Vec keeps (SWA) or an exponential
moving average (EMA, the average diffusion models and GANs sample from)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def ema_update(average: Tensor, current: Tensor, num_averaged: Tensor | int, *,
               decay: float) -> Tensor:
    """One EMA step ``d * average + (1 - d) * current`` with the warm-up
    ``d = min(decay, (1 + n) / (10 + n))`` (``n``: updates so far, ``num_averaged``), so that
    the first updates do not keep the initial weights for ``1 / (1 - decay)`` steps.
    Any shapes (elementwise); the result has ``average``'s shape."""
    n = float(num_averaged)
    d = min(decay, (1 + n) / (10 + n))
    return d * average + (1 - d) * current


def check_decay(decay: float | None) -> None:
    """A ``ValueError`` unless ``decay`` is None (equal weights) or lies in (0, 1)."""
    if decay is not None and not 0 < decay < 1:
        raise ValueError(f"ema_decay must lie in (0, 1) or be null, got {decay}")


class WeightAveraging:
    """``method`` with a running average of the weights it exports: the average starts from
    the weights at :meth:`build` and takes the weights after every optimiser step
    (``on_step_end``); :meth:`export` returns the averaged copy. Everything else is
    ``method``'s own. ``decay=None``: the equal-weight average TS2Vec evaluates (SWA);
    a number in (0, 1): the exponential moving average :func:`ema_update`. Buffers (BatchNorm
    statistics) are not averaged: the copy takes the trained model's at every update, as
    ``AveragedModel`` does by default."""

    def __init__(self, method: Any, *, decay: float | None = None):
        check_decay(decay)
        self.method = method
        self.requires = getattr(method, "requires", None)
        self.decay = decay
        self.average: AveragedModel | None = None

    def build(self, encoder: nn.Module, **kwargs: Any) -> nn.Module:
        model = self.method.build(encoder, **kwargs)
        avg_fn = None if self.decay is None else partial(ema_update, decay=self.decay)
        self.average = AveragedModel(self.method.export(model), avg_fn=avg_fn)
        self.average.update_parameters(self.method.export(model))
        return model

    def _average(self) -> AveragedModel:
        if self.average is None:
            raise RuntimeError("WeightAveraging: call build(encoder) before training")
        return self.average

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator):
        return self.method.loss(model, batch, generator)

    def batches(self, *args: Any, **kwargs: Any):
        return self.method.batches(*args, **kwargs)

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]] | None:
        """``method``'s optimiser parameter groups (None: fit's default, all parameters)."""
        groups = getattr(self.method, "param_groups", None)
        return groups(model) if groups is not None else None

    def on_step_end(self, model: nn.Module, step: int) -> None:
        self.method.on_step_end(model, step)
        self._average().update_parameters(self.method.export(model))

    def on_epoch_end(self, model: nn.Module, epoch: int) -> dict[str, float]:
        return self.method.on_epoch_end(model, epoch)

    def state_dict(self) -> dict[str, Any]:
        """The running average and the wrapped method's own state (for a checkpoint)."""
        inner = self.method.state_dict() if hasattr(self.method, "state_dict") else {}
        return {"average": self._average().state_dict(), "method": inner}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._average().load_state_dict(state["average"])
        if state["method"]:
            self.method.load_state_dict(state["method"])

    def export(self, model: nn.Module) -> nn.Module:
        """The averaged copy of ``method.export(model)``, in eval mode."""
        return self._average().module.eval()
