"""Kedro hooks of the project (registered in ``settings.py``): each module holds one concern."""

from contrastive_signals.hooks.figures import (
    ModelArtifactsHook,
    NodeFiguresHook,
    TorchThreadsHook,
)

__all__ = ["ModelArtifactsHook", "NodeFiguresHook", "TorchThreadsHook"]
