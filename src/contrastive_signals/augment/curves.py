"""View-making augmentations for 1-D force curves ``[B, C, L]`` (SimCLR views).

Pure functions take an explicit ``torch.Generator`` (same generator state -> same views);
:class:`CurveAugmentation` chains them with per-view probabilities. The augmentations act on
the force channel (channel 0); when the curves carry a derivative channel (the last one,
``np.gradient`` of the force at unit spacing), it is recomputed from the augmented force so
the two channels stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contrastive_signals.config import require_probability
from contrastive_signals.signal.filters import add_derivative_channel


def _check_curves(x: Tensor) -> None:
    if x.ndim != 3:
        raise ValueError(f"curves must have shape [B, C, L]; got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"curves must be floating point; got {x.dtype}")


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def gaussian_noise(x: Tensor, *, max_std: float, generator: torch.Generator) -> Tensor:
    """Add white noise whose std is drawn per curve from ``U(0, max_std)``.

    Args:
        x: ``[B, C, L]``. max_std: ``>= 0``, in the units of ``x``.

    Returns:
        ``[B, C, L]``.
    """
    _check_curves(x)
    if max_std < 0:
        raise ValueError(f"max_std must be >= 0; got {max_std}")
    std = _uniform(x.shape[0], 0.0, max_std, generator).to(x)
    noise = torch.randn(x.shape, generator=generator).to(x)
    return x + std[:, None, None] * noise


def stretch_shift(x: Tensor, *, max_stretch: float, max_shift: float, anchor_fraction: float,
                  generator: torch.Generator) -> Tensor:
    """Stretch each curve along the distance axis about an anchor and shift it.

    ``out[j] = x(a + (j - a) / s - d)`` with ``s ~ U(1 - max_stretch, 1 + max_stretch)``,
    ``d ~ U(-max_shift, max_shift) * L`` and anchor ``a = anchor_fraction * L`` (the aligned
    contact point); linear interpolation, edge values beyond the ends.

    Args:
        x: ``[B, C, L]``. max_stretch: in ``[0, 1)``. max_shift: share of ``L``, ``>= 0``.

    Returns:
        ``[B, C, L]``.
    """
    _check_curves(x)
    if not 0 <= max_stretch < 1 or max_shift < 0:
        raise ValueError(f"need 0 <= max_stretch < 1 and max_shift >= 0; got {max_stretch} "
                         f"and {max_shift}")
    b, _, length = x.shape
    stretch = _uniform(b, 1 - max_stretch, 1 + max_stretch, generator)
    shift = _uniform(b, -max_shift, max_shift, generator) * length
    anchor = anchor_fraction * (length - 1)
    j = torch.arange(length, dtype=torch.float64)
    source = (anchor + (j[None, :] - anchor) / stretch[:, None].double()
              - shift[:, None].double()).clamp(0, length - 1)         # [B, L]
    low = source.floor().long().clamp(max=length - 1)
    high = (low + 1).clamp(max=length - 1)
    weight = (source - low).to(x.dtype)[:, None, :]
    index_low = low[:, None, :].expand_as(x).to(x.device)
    index_high = high[:, None, :].expand_as(x).to(x.device)
    weight = weight.to(x.device)
    return x.gather(-1, index_low) * (1 - weight) + x.gather(-1, index_high) * weight


def baseline_tilt(x: Tensor, *, max_offset: float, max_tilt: float,
                  generator: torch.Generator) -> Tensor:
    """Add a residual baseline ``o + t * u`` per curve, ``u`` running 0..1 over the curve,
    ``o ~ U(-max_offset, max_offset)``, ``t ~ U(-max_tilt, max_tilt)``.

    Returns:
        ``[B, C, L]``.
    """
    _check_curves(x)
    if max_offset < 0 or max_tilt < 0:
        raise ValueError(f"max_offset and max_tilt must be >= 0; got {max_offset}, {max_tilt}")
    b, _, length = x.shape
    offset = _uniform(b, -max_offset, max_offset, generator).to(x)
    tilt = _uniform(b, -max_tilt, max_tilt, generator).to(x)
    u = torch.linspace(0, 1, length, dtype=x.dtype, device=x.device)
    return x + (offset[:, None] + tilt[:, None] * u[None, :])[:, None, :]


def with_derivative(force: Tensor, **options) -> Tensor:
    """``[B, 1, L]`` force -> ``[B, 2, L]`` force and its ``np.gradient`` (unit spacing);
    ``options`` (``scale``, ``smooth_window``, ``smooth_order``) as in
    :func:`contrastive_signals.signal.filters.add_derivative_channel`, computed on the CPU."""
    if not options:
        return torch.cat([force, torch.gradient(force, dim=-1)[0]], dim=1)
    both = add_derivative_channel(force.detach().cpu().numpy(), **options)
    return torch.from_numpy(both).to(device=force.device, dtype=force.dtype)


@dataclass(frozen=True)
class CurveAugmentation:
    """SimCLR view maker for curves; each transform is applied to a curve with its
    probability. ``derivative_channel``: the last channel is the force's derivative and is
    recomputed after augmenting channel 0 (inputs then have 2 channels), with the
    ``derivative_options`` of the preprocessing step (``(("scale", 0.1), ...)``; set by the
    pipeline, not a parameter)."""

    noise_std: float = 0.05
    noise_p: float = 0.8
    max_stretch: float = 0.1
    max_shift: float = 0.03
    anchor_fraction: float = 0.05
    stretch_p: float = 0.8
    max_offset: float = 0.1
    max_tilt: float = 0.1
    tilt_p: float = 0.5
    derivative_channel: bool = True
    derivative_options: tuple[tuple[str, float | int | None], ...] = ()

    def __post_init__(self) -> None:
        require_probability(self, ("noise_p", "stretch_p", "tilt_p"))

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """``[B, C, L]`` -> one augmented view ``[B, C, L]``."""
        _check_curves(x)
        if self.derivative_channel and x.shape[1] != 2:
            raise ValueError(f"derivative_channel expects [B, 2, L] (force, derivative); got "
                             f"{tuple(x.shape)}")
        force = x[:, :1] if self.derivative_channel else x
        for p, transform in (
            (self.stretch_p, lambda v: stretch_shift(
                v, max_stretch=self.max_stretch, max_shift=self.max_shift,
                anchor_fraction=self.anchor_fraction, generator=generator)),
            (self.tilt_p, lambda v: baseline_tilt(v, max_offset=self.max_offset,
                                                  max_tilt=self.max_tilt, generator=generator)),
            (self.noise_p, lambda v: gaussian_noise(v, max_std=self.noise_std,
                                                    generator=generator)),
        ):
            apply = (torch.rand(force.shape[0], generator=generator) < p).to(force.device)
            force = torch.where(apply[:, None, None], transform(force), force)
        return (with_derivative(force, **dict(self.derivative_options))
                if self.derivative_channel else force)

    def two_views(self, x: Tensor, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two independent views ``([B, C, L], [B, C, L])`` of ``x``, drawn one after the other
        on the CPU (the generator's device) and returned on ``x``'s device."""
        first = self(x.cpu(), generator).to(x.device)
        return first, self(x.cpu(), generator).to(x.device)
