"""A two-level hierarchical VAE whose latents are split into a signal and a noise part.

Levels (for ``N x N`` images, ``N`` divisible by 8):

- *spatial*: ``z1`` of shape ``[B, S_sig + S_noise, N/4, N/4]`` (channels ``[:S_sig]`` are the
  signal part), posterior ``q(z1 | x)``, prior ``p(z1 | z2)`` computed top-down;
- *global*: ``z2`` of shape ``[B, G_sig + G_noise]``, posterior ``q(z2 | x)``, prior
  ``N(0, I)``.

The decoder maps ``(z1, z2)`` to an image ``[B, 1, N, N]``. Removing noise swaps the noise
parts of a noisy image's code for those of a clean image's code (and injecting noise does
the reverse); :func:`swap_noise` does the swap on posterior means.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LEVELS = ("spatial", "global")


class ResBlock(nn.Module):
    """Two 3x3 convolutions with SiLU and a skip connection; channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


def _down(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), ResBlock(c_out))


def _up(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), ResBlock(c_out))


@dataclass
class Gaussian:
    """Diagonal Gaussian: ``mean`` and ``log_var`` of equal shape."""

    mean: Tensor
    log_var: Tensor

    def reparameterise(self, eps: Tensor) -> Tensor:
        """``mean + std * eps`` for standard normal draws ``eps`` of the same shape."""
        return self.mean + (0.5 * self.log_var).exp() * eps.to(self.mean.device)

    def kl(self, prior: Gaussian | None = None) -> Tensor:
        """``KL(self || prior)`` summed over all but the batch dim -> ``[B]``; prior
        ``N(0, I)`` when None."""
        if prior is None:
            terms = 0.5 * (self.mean.square() + self.log_var.exp() - 1.0 - self.log_var)
        else:
            terms = 0.5 * (prior.log_var - self.log_var
                           + (self.log_var.exp() + (self.mean - prior.mean).square())
                           / prior.log_var.exp() - 1.0)
        return terms.flatten(1).sum(dim=1)


def _gaussian(params: Tensor, dim: int) -> Gaussian:
    # float32 even under bf16 autocast: the KL and the reparameterised draw need the precision
    mean, log_var = params.float().chunk(2, dim=dim)
    return Gaussian(mean, log_var.clamp(-12.0, 6.0))


def _concat(signal: Gaussian, noise: Gaussian) -> Gaussian:
    """One Gaussian whose channels (dim 1) are the signal part, then the noise part."""
    return Gaussian(torch.cat([signal.mean, noise.mean], dim=1),
                    torch.cat([signal.log_var, noise.log_var], dim=1))


def check_hvae_config(*, channels: tuple[int, ...], spatial_signal: int, spatial_noise: int,
                      global_signal: int, global_noise: int, latent_stride: int,
                      decoder_blocks: int, noise_channels: int) -> None:
    """Raise ``ValueError`` naming the first bad :class:`HierarchicalVAE` argument (all but
    ``image_size``); the model and its parameters dataclass both call it."""
    if len(channels) != 3 or min(channels) < 1:
        raise ValueError(f"channels must be three positive integers, got {channels}")
    for name, value in (("spatial_signal", spatial_signal), ("global_signal", global_signal),
                        ("decoder_blocks", decoder_blocks)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    for name, value in (("spatial_noise", spatial_noise), ("global_noise", global_noise),
                        ("noise_channels", noise_channels)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    # a noise part of 0 puts the split at the other level only (the ablation of its level)
    if spatial_noise == global_noise == 0:
        raise ValueError("spatial_noise and global_noise are both 0: the latent has no noise "
                         "part to swap; give at least one level a noise part")
    if noise_channels and 0 in (spatial_noise, global_noise):
        raise ValueError("noise_channels > 0 (a separate noise encoder) needs a noise part at "
                         f"both levels, got spatial_noise={spatial_noise}, "
                         f"global_noise={global_noise}")
    if latent_stride not in (2, 4):
        raise ValueError(f"latent_stride must be 2 or 4, got {latent_stride}")


@dataclass(frozen=True)
class HVAEModelParams:
    """:class:`HierarchicalVAE`'s arguments but ``image_size`` (which comes from the data)."""

    channels: tuple[int, int, int] = (16, 32, 48)
    spatial_signal: int = 8
    spatial_noise: int = 4
    global_signal: int = 32
    global_noise: int = 16
    latent_stride: int = 4
    decoder_blocks: int = 1
    noise_channels: int = 0

    def __post_init__(self) -> None:
        check_hvae_config(**self.config())  # the model's own checks, under this path

    def config(self) -> dict[str, Any]:
        """The model's keyword arguments (a bundle's ``config`` with ``image_size``)."""
        return {**asdict(self), "channels": tuple(self.channels)}


@dataclass
class HVAEOutput:
    """What one training pass returns: the reconstruction ``[B, 1, N, N]``, the posteriors
    and the prior of ``z1`` given the sampled ``z2``."""

    reconstruction: Tensor
    posteriors: dict[str, Gaussian]
    spatial_prior: Gaussian

    def kl(self) -> Tensor:
        """Total KL per image ``[B]``: ``KL(q(z2|x) || N(0, I)) + KL(q(z1|x) || p(z1|z2))``."""
        return self.posteriors["global"].kl() + self.posteriors["spatial"].kl(self.spatial_prior)


class HierarchicalVAE(nn.Module):
    """Two-level VAE with signal/noise latent splits.

    Args:
        image_size: ``N`` (divisible by 8).
        channels: feature channels at resolutions ``N``, ``N/2`` and ``N/4`` (and ``N/8``).
        spatial_signal, spatial_noise: channels of the signal and noise parts of ``z1``.
        global_signal, global_noise: sizes of the signal and noise parts of ``z2``.
        latent_stride: ``z1`` lives at ``N / latent_stride`` (2 or 4). At ``N/2`` the posterior
            sees the ``N/4`` features too (upsampled and concatenated, as in a U-Net), so its
            receptive field stays wide enough to tell streaks from edges.
        decoder_blocks: residual blocks after the merge of ``z1`` and after each upsampling of
            the decoder (its capacity).
        noise_channels: 0: one encoder computes both parts. ``> 0``: the noise parts come from a
            separate, light encoder of this width (the signal triplet makes the main encoder's
            features blind to the noise, which then starves a shared noise head).
    """

    def __init__(self, *, image_size: int = 64, channels: tuple[int, int, int] = (32, 64, 96),
                 spatial_signal: int = 8, spatial_noise: int = 4, global_signal: int = 32,
                 global_noise: int = 16, latent_stride: int = 4, decoder_blocks: int = 1,
                 noise_channels: int = 0) -> None:
        super().__init__()
        if image_size % 8 or image_size < 8:
            raise ValueError(f"image_size must be a positive multiple of 8, got {image_size}")
        check_hvae_config(channels=channels, spatial_signal=spatial_signal,
                          spatial_noise=spatial_noise, global_signal=global_signal,
                          global_noise=global_noise, latent_stride=latent_stride,
                          decoder_blocks=decoder_blocks, noise_channels=noise_channels)
        c0, c1, c2 = channels
        self.image_size = image_size
        self.latent_stride = latent_stride
        self.splits = {"spatial": (spatial_signal, spatial_noise),
                       "global": (global_signal, global_noise)}
        s_dim, g_dim = spatial_signal + spatial_noise, global_signal + global_noise
        low = image_size // 8
        c_latent = c1 if latent_stride == 2 else c2  # features at the z1 resolution

        def blocks(c: int) -> list[nn.Module]:
            return [ResBlock(c) for _ in range(decoder_blocks)]

        self.encoder_stem = nn.Sequential(nn.Conv2d(1, c0, 3, padding=1), ResBlock(c0))
        self.encoder_half = _down(c0, c1)                                   # -> N/2
        self.encoder_quarter = _down(c1, c2)                                # -> N/4
        if latent_stride == 2:  # U-Net-style: N/2 features + upsampled N/4 features
            self.encoder_lift = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
            self.encoder_latent = nn.Sequential(nn.Conv2d(2 * c1, c1, 3, padding=1),
                                                ResBlock(c1))
        self.noise_channels = noise_channels
        # the main encoder's heads: both parts, or only the signal parts
        s_head = s_dim if noise_channels == 0 else spatial_signal
        g_head = g_dim if noise_channels == 0 else global_signal
        self.spatial_posterior = nn.Conv2d(c_latent, 2 * s_head, 3, padding=1)
        self.encoder_top = nn.Sequential(_down(c2, c2), nn.Flatten(),
                                         nn.Linear(c2 * low * low, 2 * g_head))
        if noise_channels:
            cn = noise_channels
            trunk: list[nn.Module] = [nn.Conv2d(1, cn, 3, padding=1), ResBlock(cn), _down(cn, cn)]
            if latent_stride == 4:
                trunk.append(_down(cn, cn))
            self.noise_trunk = nn.Sequential(*trunk)                        # -> N/stride
            self.noise_spatial = nn.Conv2d(cn, 2 * spatial_noise, 3, padding=1)
            self.noise_global = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                              nn.Linear(cn, 2 * global_noise))
        top: list[nn.Module] = [nn.Linear(g_dim, c2 * low * low), nn.Unflatten(1, (c2, low, low)),
                                nn.SiLU(), _up(c2, c2)]                     # -> N/4
        if latent_stride == 2:
            top.append(_up(c2, c1))                                         # -> N/2
        self.decoder_top = nn.Sequential(*top)
        self.spatial_prior = nn.Conv2d(c_latent, 2 * s_dim, 3, padding=1)
        self.merge = nn.Sequential(nn.Conv2d(c_latent + s_dim, c_latent, 3, padding=1),
                                   *blocks(c_latent))
        out: list[nn.Module] = []
        if latent_stride == 4:
            out += [nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), *blocks(c1)]  # -> N/2
        out += [nn.ConvTranspose2d(c1, c0, 4, stride=2, padding=1), *blocks(c0),      # -> N
                nn.SiLU(), nn.Conv2d(c0, 1, 3, padding=1)]
        self.decoder_out = nn.Sequential(*out)

    def posteriors(self, images: Tensor) -> dict[str, Gaussian]:
        """``[B, 1, N, N]`` -> ``{"spatial": q(z1|x), "global": q(z2|x)}``."""
        half = self.encoder_half(self.encoder_stem(images))
        quarter = self.encoder_quarter(half)
        latent = quarter
        if self.latent_stride == 2:
            latent = self.encoder_latent(torch.cat([half, self.encoder_lift(quarter)], dim=1))
        spatial = _gaussian(self.spatial_posterior(latent), dim=1)
        global_ = _gaussian(self.encoder_top(quarter), dim=1)
        if self.noise_channels:
            h = self.noise_trunk(images)
            spatial = _concat(spatial, _gaussian(self.noise_spatial(h), dim=1))
            global_ = _concat(global_, _gaussian(self.noise_global(h), dim=1))
        return {"spatial": spatial, "global": global_}

    def _top_down(self, z_global: Tensor) -> Tensor:
        return self.decoder_top(z_global)

    def decode(self, codes: dict[str, Tensor]) -> Tensor:
        """Latents ``{"spatial": [B, S, N/s, N/s], "global": [B, G]}`` (``s`` the latent
        stride) -> images ``[B, 1, N, N]``."""
        top = self._top_down(codes["global"])
        return self.decoder_out(self.merge(torch.cat([top, codes["spatial"]], dim=1)))

    def encode(self, images: Tensor) -> dict[str, Tensor]:
        """Posterior means (the deterministic codes used for swapping), per level."""
        return {level: q.mean for level, q in self.posteriors(images).items()}

    def latent_noise(self, batch: int, generator: torch.Generator | None
                     ) -> dict[str, Tensor]:
        """The standard normal draws :meth:`forward` makes for ``batch`` images, in its order:
        ``{"global": [B, G], "spatial": [B, S, N/s, N/s]}`` (float32, on the CPU). Drawn up
        front, a data-parallel rank can take its shard of the draws one process makes for the
        whole batch."""
        side = self.image_size // self.latent_stride
        return {"global": torch.randn(batch, sum(self.splits["global"]), generator=generator),
                "spatial": torch.randn(batch, sum(self.splits["spatial"]), side, side,
                                       generator=generator)}

    def forward(self, images: Tensor, generator: torch.Generator | None = None,
                noise: dict[str, Tensor] | None = None) -> HVAEOutput:
        """Encode, sample both levels, decode. ``images``: ``[B, 1, N, N]``; ``noise``: the
        draws of :meth:`latent_noise` for these images (drawn from ``generator`` when None)."""
        posteriors = self.posteriors(images)
        if noise is None:
            noise = self.latent_noise(images.shape[0], generator)
        z_global = posteriors["global"].reparameterise(noise["global"])
        top = self._top_down(z_global)
        prior = _gaussian(self.spatial_prior(top), dim=1)
        z_spatial = posteriors["spatial"].reparameterise(noise["spatial"])
        reconstruction = self.decoder_out(self.merge(torch.cat([top, z_spatial], dim=1)))
        return HVAEOutput(reconstruction, posteriors, prior)

    def split(self, codes: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """``{level: (signal part, noise part)}``, each flattened to ``[B, D]``."""
        out = {}
        for level, code in codes.items():
            n_signal = self.splits[level][0]
            out[level] = (code[:, :n_signal].flatten(1), code[:, n_signal:].flatten(1))
        return out


def swap_noise(model: HierarchicalVAE, codes: dict[str, Tensor],
               donors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Codes whose signal parts come from ``codes`` and noise parts from ``donors`` (at every
    level); both dicts hold ``[B, ...]`` tensors of equal shapes."""
    out = {}
    for level, code in codes.items():
        n_signal = model.splits[level][0]
        out[level] = torch.cat([code[:, :n_signal], donors[level][:, n_signal:]], dim=1)
    return out


def cross_swap_codes(model: HierarchicalVAE, codes: dict[str, Tensor], signal_rows: Tensor,
                     noise_rows: Tensor) -> dict[str, Tensor]:
    """The training counterpart of the test-time swaps, on a batch's own codes: row ``k`` of
    the result has the signal parts of row ``signal_rows[k]`` and the noise parts of row
    ``noise_rows[k]`` (made by :func:`swap_noise`, the test-time swap).

    With the stacked batch ``[clean_0..clean_{B-1}, noisy_0..noisy_{B-1}]`` (``[2B, ...]`` per
    level), noise removal is ``signal_rows = B + i``, ``noise_rows = d`` (the noise parts of
    other clean images ``d``, a derangement: never the image's own clean version), and noise
    injection is ``signal_rows = i``, ``noise_rows = B + d``.

    Args:
        codes: per level ``[R, ...]``.
        signal_rows, noise_rows: ``[K]`` row indices into ``codes``.

    Returns:
        Per level ``[K, ...]``.
    """
    if signal_rows.shape != noise_rows.shape or signal_rows.ndim != 1:
        raise ValueError(f"signal_rows {tuple(signal_rows.shape)} and noise_rows "
                         f"{tuple(noise_rows.shape)} must be 1-D of equal length")
    rows = next(iter(codes.values())).shape[0]
    if len(signal_rows) and max(int(signal_rows.max()), int(noise_rows.max())) >= rows:
        raise ValueError(f"row indices must be < {rows}, the rows of the codes")
    signal = {level: code[signal_rows.to(code.device)] for level, code in codes.items()}
    noise = {level: code[noise_rows.to(code.device)] for level, code in codes.items()}
    return swap_noise(model, signal, noise)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[torch.device]:
    """``model`` in eval mode without gradients (its mode restored after); yields its device."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


def encode_images(model: HierarchicalVAE, images: Tensor, *, batch_size: int = 256
                  ) -> dict[str, Tensor]:
    """Posterior means of ``images`` ``[B, 1, N, N]``, ``batch_size`` at a time, per level
    ``[B, ...]`` on the CPU (eval mode, no gradients)."""
    with _evaluating(model) as device:
        chunks = [model.encode(images[start:start + batch_size].to(device))
                  for start in range(0, images.shape[0], batch_size)]
    return {level: torch.cat([c[level].cpu() for c in chunks]) for level in chunks[0]}


def decode_codes(model: HierarchicalVAE, codes: dict[str, Tensor], *, batch_size: int = 256
                 ) -> Tensor:
    """Images ``[B, 1, N, N]`` on the CPU decoded from codes (per level ``[B, ...]``),
    ``batch_size`` at a time (eval mode, no gradients)."""
    rows = next(iter(codes.values())).shape[0]
    with _evaluating(model) as device:
        return torch.cat([
            model.decode({level: c[start:start + batch_size].to(device)
                          for level, c in codes.items()}).cpu()
            for start in range(0, rows, batch_size)])


def swap_decode(model: HierarchicalVAE, images: Tensor, donors: Tensor, *,
                batch_size: int = 256) -> Tensor:
    """Decode the signal parts of ``images`` with the noise parts of ``donors`` (both
    ``[B, 1, N, N]``, row ``i`` of each paired) -> ``[B, 1, N, N]``. With clean donors this
    removes noise; with noisy donors it injects noise."""
    codes = encode_images(model, images, batch_size=batch_size)
    donor_codes = encode_images(model, donors, batch_size=batch_size)
    return decode_codes(model, swap_noise(model, codes, donor_codes), batch_size=batch_size)


def own_decode(model: HierarchicalVAE, images: Tensor, *, batch_size: int = 256) -> Tensor:
    """Decode each image's own posterior-mean code -> ``[B, 1, N, N]``."""
    return decode_codes(model, encode_images(model, images, batch_size=batch_size),
                        batch_size=batch_size)


def latent_part_effects(model: HierarchicalVAE, clean: Tensor, noisy: Tensor
                        ) -> dict[str, Tensor]:
    """What each part of the latent holds, for clean images ``[K, 1, N, N]`` and their own
    noisy versions ``[K, 1, N, N]``, as differences from the clean image's own decode
    ``D(clean)``:

    - ``"streaks"``: ``noisy - clean``, the structured noise itself;
    - ``"noise part"``: ``D(signal of clean, noise of noisy) - D(clean)``: what the noisy
      image's noise parts add (the streaks, when the split works);
    - ``"signal part"``: ``D(signal of noisy, noise of clean) - D(clean)``: what its signal
      parts add (streaks that leaked into them, which a swap cannot remove).

    Returns:
        Each ``[K, N, N]``.
    """
    clean_codes, noisy_codes = encode_images(model, clean), encode_images(model, noisy)
    base = decode_codes(model, clean_codes)
    return {"streaks": (noisy - clean)[:, 0],
            "noise part": (decode_codes(model, swap_noise(model, clean_codes, noisy_codes))
                           - base)[:, 0],
            "signal part": (decode_codes(model, swap_noise(model, noisy_codes, clean_codes))
                            - base)[:, 0]}


def swap_donors(train: dict[str, Any], views: int, count: int, *, pool: int,
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random swap donors for ``count`` images seen at ``views`` views: clean training images
    (to remove noise) and noisy ones at the same view count (to inject it; the nearest
    training view count when ``views`` was not trained on), drawn in this order among the
    first ``pool`` training images.

    Args:
        train: ``{"clean": [M, N, N], "noisy": {views: [M, N, N]}}``.

    Returns:
        ``(clean donors [count, 1, N, N], noisy donors [count, 1, N, N])``.
    """
    available = list(train["noisy"])
    donor_views = views if views in available else min(available, key=lambda c: abs(c - views))
    clean = train["clean"][torch.randint(0, pool, (count,), generator=generator)]
    noisy = train["noisy"][donor_views][torch.randint(0, pool, (count,), generator=generator)]
    return clean[:, None], noisy[:, None]


def swap_panels(model: HierarchicalVAE, clean: Tensor, true_noisy: Tensor, clean_donors: Tensor,
                noisy_donors: Tensor) -> dict[str, Tensor]:
    """The classic swap panels ``{title: [K, N, N]}`` of clean images ``[K, N, N]``, their true
    noisy versions ``[K, N, N]`` and donors ``[K, 1, N, N]`` (:func:`swap_donors`): noisy, its
    reconstruction, clean, its reconstruction, noise removed by swap, noise injected by swap,
    true noisy of clean.

    Row ``i``'s noisy image is the noisy version of clean image ``i + 1`` (another image), so
    that removal and injection are shown on different images, as in the paper's figure.
    """
    noisy = true_noisy.roll(-1, dims=0)
    return {
        "noisy": noisy,
        "noisy recon.": own_decode(model, noisy[:, None])[:, 0],
        "clean": clean,
        "clean recon.": own_decode(model, clean[:, None])[:, 0],
        "noise removed (swap)": swap_decode(model, noisy[:, None], clean_donors)[:, 0],
        "noise injected (swap)": swap_decode(model, clean[:, None], noisy_donors)[:, 0],
        "true noisy of clean": true_noisy,
    }
