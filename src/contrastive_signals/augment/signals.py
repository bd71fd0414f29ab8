"""View-making augmentations for batches of 1-D signals ``x`` ``[B, T, C]`` (time, then channels).

Each augmentation is a pure function: it returns a new tensor, never changes its input, and
draws its randomness only from the explicit ``torch.Generator`` it is given (a CPU generator;
the random numbers are moved to ``x``'s device). Every sample of the batch gets its own draw.
:class:`SignalAugmentation` chains them with per-augmentation probabilities for SimCLR views.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contrastive_signals.config import require_at_least, require_probability


def _check(x: Tensor) -> None:
    if x.ndim != 3:
        raise ValueError(f"x must be [B, T, C], got shape {tuple(x.shape)}")


def _rand(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=generator).to(device=like.device, dtype=like.dtype)


def _randn(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=generator).to(device=like.device, dtype=like.dtype)


def _resample(x: Tensor, positions: Tensor) -> Tensor:
    """Linear interpolation of ``x`` ``[B, T, C]`` at fractional time ``positions`` ``[B, T']``
    (clamped to ``[0, T - 1]``) -> ``[B, T', C]``."""
    t = x.shape[1]
    positions = positions.clamp(0, t - 1)
    left = positions.floor().long().clamp(max=t - 2) if t > 1 else positions.long() * 0
    frac = (positions - left).unsqueeze(-1)
    right = (left + 1).clamp(max=t - 1)
    gather = lambda idx: torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # noqa: E731
    return gather(left) * (1 - frac) + gather(right) * frac


def jitter(x: Tensor, *, sigma: float, generator: torch.Generator) -> Tensor:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma`` to every value."""
    _check(x)
    return x + sigma * _randn(tuple(x.shape), generator, x)


def scaling(x: Tensor, *, sigma: float, generator: torch.Generator) -> Tensor:
    """Multiply each sample's channel by a factor drawn from ``N(1, sigma)``."""
    _check(x)
    return x * (1 + sigma * _randn((x.shape[0], 1, x.shape[2]), generator, x))


def time_shift(x: Tensor, *, max_shift: int, generator: torch.Generator) -> Tensor:
    """Circularly shift each sample by an integer drawn uniformly from
    ``[-max_shift, max_shift]`` steps."""
    _check(x)
    b, t = x.shape[:2]
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator).to(x.device)
    idx = (torch.arange(t, device=x.device).view(1, t) - shifts.view(b, 1)) % t
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def random_crop(x: Tensor, *, min_fraction: float, generator: torch.Generator) -> Tensor:
    """Crop a random window covering a fraction in ``[min_fraction, 1]`` of each sample and
    stretch it back to ``T`` steps by linear interpolation (a resized crop)."""
    _check(x)
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must lie in (0, 1], got {min_fraction}")
    b, t = x.shape[:2]
    fraction = min_fraction + (1 - min_fraction) * _rand((b, 1), generator, x)
    span = fraction * (t - 1)
    start = _rand((b, 1), generator, x) * (t - 1 - span)
    grid = torch.linspace(0, 1, t, device=x.device, dtype=x.dtype).view(1, t)
    return _resample(x, start + grid * span)


def time_warp(x: Tensor, *, sigma: float, knots: int, generator: torch.Generator) -> Tensor:
    """Smoothly speed up and slow down time: local speeds ``exp(N(0, sigma))`` at ``knots``
    evenly spaced points, linearly interpolated, integrated to a monotone map of ``[0, T-1]``
    onto itself, and the signal resampled along it."""
    _check(x)
    if knots < 1:
        raise ValueError(f"knots must be >= 1, got {knots}")
    b, t = x.shape[:2]
    speeds = torch.exp(sigma * _randn((b, knots + 2), generator, x))  # [B, K+2]
    knot_pos = torch.linspace(0, knots + 1, t, device=x.device, dtype=x.dtype)
    left = knot_pos.floor().long().clamp(max=knots)
    frac = knot_pos - left
    speed = speeds[:, left] * (1 - frac) + speeds[:, left + 1] * frac  # [B, T]
    warp = torch.cumsum(speed, dim=1) - speed[:, :1]
    warp = warp / warp[:, -1:].clamp_min(1e-8) * (t - 1)
    return _resample(x, warp)


def frequency_mask(x: Tensor, *, max_fraction: float, generator: torch.Generator) -> Tensor:
    """Zero a random contiguous band of up to ``max_fraction`` of the rFFT bins (DC kept) of
    each sample and transform back."""
    _check(x)
    b, t = x.shape[:2]
    spectrum = torch.fft.rfft(x.float(), dim=1)  # [B, F, C]
    bins = spectrum.shape[1]
    width = (_rand((b, 1), generator, x) * max_fraction * bins).long()
    start = 1 + (_rand((b, 1), generator, x) * (bins - 1 - width).clamp_min(0)).long()
    f = torch.arange(bins, device=x.device).view(1, bins)
    keep = ~((f >= start) & (f < start + width))
    return torch.fft.irfft(spectrum * keep.unsqueeze(-1), n=t, dim=1).to(x.dtype)


@dataclass(frozen=True)
class SignalAugmentation:
    """A chain of the augmentations above, each applied to a sample with its probability.

    Order: crop, time warp, shift, scaling, frequency mask, jitter. A probability of 0 turns an
    augmentation off. Built from YAML with ``SignalAugmentation(**params)``.
    """

    crop_p: float = 0.5
    crop_min_fraction: float = 0.7
    warp_p: float = 0.5
    warp_sigma: float = 0.2
    warp_knots: int = 4
    shift_p: float = 0.5
    max_shift: int = 5
    scaling_p: float = 0.8
    scaling_sigma: float = 0.2
    frequency_mask_p: float = 0.3
    frequency_mask_fraction: float = 0.2
    jitter_p: float = 0.8
    jitter_sigma: float = 0.05

    def __post_init__(self) -> None:
        require_probability(self, ("crop_p", "warp_p", "shift_p", "scaling_p", "frequency_mask_p",
                                   "jitter_p"))
        if not 0 < self.crop_min_fraction <= 1:
            raise ValueError(f"crop_min_fraction must lie in (0, 1], got {self.crop_min_fraction}")
        require_at_least(self, ("warp_sigma", "scaling_sigma", "jitter_sigma", "max_shift",
                                "frequency_mask_fraction"), 0)
        if self.warp_knots < 1:
            raise ValueError(f"warp_knots must be >= 1, got {self.warp_knots}")

    def __call__(self, x: Tensor, *, generator: torch.Generator) -> Tensor:
        """One random view of every sample of ``x`` ``[B, T, C]``."""
        _check(x)
        steps = [
            (self.crop_p, lambda v: random_crop(v, min_fraction=self.crop_min_fraction,
                                                generator=generator)),
            (self.warp_p, lambda v: time_warp(v, sigma=self.warp_sigma, knots=self.warp_knots,
                                              generator=generator)),
            (self.shift_p, lambda v: time_shift(v, max_shift=self.max_shift, generator=generator)),
            (self.scaling_p, lambda v: scaling(v, sigma=self.scaling_sigma, generator=generator)),
            (self.frequency_mask_p, lambda v: frequency_mask(
                v, max_fraction=self.frequency_mask_fraction, generator=generator)),
            (self.jitter_p, lambda v: jitter(v, sigma=self.jitter_sigma, generator=generator)),
        ]
        for p, apply in steps:
            if p == 0:
                continue
            chosen = (_rand((x.shape[0], 1, 1), generator, x) < p)
            x = torch.where(chosen, apply(x), x)
        return x

    def two_views(self, x: Tensor, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two independent views ``([B, T, C], [B, T, C])`` of ``x``."""
        return self(x, generator=generator), self(x, generator=generator)
