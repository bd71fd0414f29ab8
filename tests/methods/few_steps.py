"""A method's loss over a few optimiser steps on one tiny batch, with the same draws (masks,
noise) at every step, so a decreasing loss shows that the method's gradient is useful."""

from __future__ import annotations

import torch

from contrastive_signals.training.fit import LossOutput


def losses_over_steps(method, model: torch.nn.Module, batch: tuple[torch.Tensor, ...], *,
                      steps: int = 5, learning_rate: float = 1e-2, seed: int = 0) -> list[float]:
    """Total loss before each of ``steps`` Adam steps on ``batch``."""
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    losses = []
    for _ in range(steps):
        output = method.loss(model, batch, torch.Generator().manual_seed(seed))
        total = output.total if isinstance(output, LossOutput) else output
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(total.item())
    return losses
