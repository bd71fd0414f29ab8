"""Autocast policies that a method applies to its own forward calls (not to the whole loss):
the losses around them stay float32."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from contrastive_signals.training.device import resolve_device


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 kernels on this CPU (AVX-512 BW/VL/DQ, AVX512-BF16 or AMX).
    Without them bf16 is emulated: the denoising HVAE's training step was 11x slower under
    bf16 autocast than in float32 on an AVX2-only EPYC (26 s against 2.3 s)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:  # a torch build without oneDNN
        return False


CPU_BF16_SETTINGS = (True, False, "auto")


def resolve_cpu_bf16(setting: bool | str) -> bool:
    """``cpu_bf16`` as a parameter gives it: ``true`` / ``false``, or ``"auto"`` (bf16 only
    where :func:`cpu_has_fast_bf16`). Raises ``ValueError`` for anything else."""
    if setting not in CPU_BF16_SETTINGS or (setting != "auto" and not isinstance(setting, bool)):
        raise ValueError(f"cpu_bf16 must be true, false or auto, got {setting!r}")
    return cpu_has_fast_bf16() if setting == "auto" else setting


class CpuBf16Forward:
    """bf16 autocast with channels-last images, on the CPU only; or channels-last alone.

    When ``enabled`` (``"auto"``: where the CPU has bf16 kernels) and ``device`` resolves to
    the CPU, :meth:`prepare` makes the model channels-last and ``policy(fn, inputs, *args)``
    calls ``fn(inputs, *args)`` under bf16 autocast with image inputs ``[B, C, H, W]`` made
    channels-last, so that oneDNN uses its bf16 kernels (AMX / AVX-512; about 3x faster per
    step for the denoisers). ``fn`` is the model or one of its methods (``net.decode`` takes a
    dict of codes, passed through as is).

    ``channels_last`` without bf16 keeps float32 but makes the model and the image inputs
    channels-last on the CPU: oneDNN's float32 convolutions are faster in that layout (the
    denoising HVAE's training step: 11-14 % on an AVX2 EPYC, 1 or 2 threads). Same maths,
    other rounding. Otherwise both are the identity: ``fn(inputs, *args)`` unchanged (CUDA
    autocast is fit's).
    """

    def __init__(self, *, enabled: bool | str = False, device: str = "cpu",
                 channels_last: bool = False) -> None:
        on_cpu = resolve_device(device).type == "cpu"
        self.active = resolve_cpu_bf16(enabled) and on_cpu
        self.channels_last = on_cpu and (self.active or bool(channels_last))

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model``, channels-last when the policy uses that layout (in place, as
        ``Module.to``)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def __call__(self, fn: Callable[..., Any], inputs: Any, *args: Any) -> Any:
        if not self.channels_last:
            return fn(inputs, *args)
        if isinstance(inputs, Tensor) and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if not self.active:
            return fn(inputs, *args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fn(inputs, *args)
