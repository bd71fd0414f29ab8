"""Autocast policies that a method applies to its own forward calls (not to the whole loss):
the losses around them stay float32."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from contrastive_signals.training.device import resolve_device


class CpuBf16Forward:
    """bf16 autocast with channels-last images, on the CPU only.

    When ``enabled`` and ``device`` resolves to the CPU, :meth:`prepare` makes the model
    channels-last and ``policy(fn, inputs, *args)`` calls ``fn(inputs, *args)`` under bf16
    autocast with image inputs ``[B, C, H, W]`` made channels-last, so that oneDNN uses its
    bf16 kernels (AMX / AVX-512; about 3x faster per step for the denoisers). ``fn`` is the
    model or one of its methods (``net.decode`` takes a dict of codes, passed through as is).
    Otherwise both are the identity: ``fn(inputs, *args)`` unchanged (CUDA autocast is fit's).
    """

    def __init__(self, *, enabled: bool = False, device: str = "cpu") -> None:
        self.active = bool(enabled) and resolve_device(device).type == "cpu"

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model``, channels-last when the policy is active (in place, as ``Module.to``)."""
        return model.to(memory_format=torch.channels_last) if self.active else model

    def __call__(self, fn: Callable[..., Any], inputs: Any, *args: Any) -> Any:
        if not self.active:
            return fn(inputs, *args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if isinstance(inputs, Tensor):
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            return fn(inputs, *args)
