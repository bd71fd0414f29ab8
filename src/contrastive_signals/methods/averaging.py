"""Stochastic weight averaging around any method: the method state TS2Vec keeps (its
``AveragedModel``), stepped by fit's hooks instead of a closure counter."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


class WeightAveraging:
    """``method`` with a running average of the weights it exports, as TS2Vec evaluates it:
    the average starts from the weights at :meth:`build` and takes the weights after every
    optimiser step (``on_step_end``); :meth:`export` returns the averaged copy. Everything
    else is ``method``'s own. Buffers (BatchNorm statistics) are not averaged: the copy keeps
    those of the start, as ``AveragedModel`` does by default."""

    def __init__(self, method: Any):
        self.method = method
        self.requires = method.requires
        self.average: AveragedModel | None = None

    def build(self, encoder: nn.Module, **kwargs: Any) -> nn.Module:
        model = self.method.build(encoder, **kwargs)
        self.average = AveragedModel(self.method.export(model))
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
