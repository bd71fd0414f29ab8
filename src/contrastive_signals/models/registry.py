"""Build models from plain (YAML-friendly) specs and move them in and out of state bundles.

A *bundle* is what the catalog stores: ``{"architecture": str, "config": dict,
"state_dict": dict}``. It holds only tensors and primitives, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastive_signals.models.curves import CurveCNN
from contrastive_signals.models.encoders import DigitCNN, SupervisedCNN, TripletMLP
from contrastive_signals.models.sequence import ConvBiLSTM, SequenceCNN
from contrastive_signals.models.sleep import SleepStager

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "digit_cnn": DigitCNN,
    "triplet_mlp": TripletMLP,
    "supervised_cnn": SupervisedCNN,
    "ctc_cnn": SequenceCNN,
    "ctc_bilstm": ConvBiLSTM,
    "sleep_stager": SleepStager,
    "curve_cnn": CurveCNN,
}


def build_model(architecture: str, config: dict[str, Any], *, seed: int) -> nn.Module:
    """Instantiate ``architecture`` with ``config``; weights are drawn from ``seed`` without
    touching the caller's global random state."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture '{architecture}'; choose one of {sorted(ARCHITECTURES)}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[architecture](**config)


def to_bundle(model: nn.Module, architecture: str, config: dict[str, Any]) -> dict[str, Any]:
    """Detach ``model``'s weights to CPU into a storable bundle."""
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    return {"architecture": architecture, "config": dict(config), "state_dict": state}


def from_bundle(bundle: dict[str, Any]) -> nn.Module:
    """Rebuild the model a bundle describes, in eval mode on the CPU."""
    model = build_model(bundle["architecture"], bundle["config"], seed=0)
    model.load_state_dict(bundle["state_dict"])
    return model.eval()


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, *, batch_size: int = 512,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """Frozen embeddings ``[N, D]`` of ``images`` ``[N, C, H, W]`` (``embed`` if the model has
    one, else ``forward``), computed in eval mode in batches."""
    was_training = model.training
    model.eval().to(device)
    encode = model.embed if hasattr(model, "embed") else model
    outputs = [encode(images[i:i + batch_size].to(device)).float().cpu()
               for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(outputs)
