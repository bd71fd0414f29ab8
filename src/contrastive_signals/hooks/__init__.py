"""Kedro hooks of the project (registered in ``settings.py``): each module holds one concern."""

from contrastive_signals.hooks.figures import (
    ModelArtifactsHook,
    NodeFiguresHook,
    TorchThreadsHook,
)
from contrastive_signals.hooks.isolation import RunIsolationHook

__all__ = ["ModelArtifactsHook", "NodeFiguresHook", "RunIsolationHook", "TorchThreadsHook"]
