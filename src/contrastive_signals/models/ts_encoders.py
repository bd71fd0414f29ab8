"""Per-timestep encoders for (multivariate, variable-length) time series.

Every encoder maps a batch ``x`` ``[B, T, C]`` with a validity ``mask`` ``[B, T]`` (``True`` =
observed, ``False`` = padding) to per-timestep representations ``[B, T, D]``. An instance
embedding is the max over valid timesteps (:func:`max_pool_time`), as in TS2Vec's
``encoding_window='full_series'``. Padded positions are zeroed at the input, so padding never
adds information; the pooled embedding ignores them.

Architectures (registered in :mod:`contrastive_signals.models.registry`): ``cnn1d`` (plain 1-D CNN), ``dilated_conv`` (TS2Vec's
encoder: input projection, timestamp masking, residual dilated convolutions), ``transformer``
(sinusoidal positional encoding + Transformer encoder), ``gru`` and ``lstm`` (bidirectional).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_inputs(x: Tensor, mask: Tensor | None, in_channels: int) -> Tensor:
    """Validate ``x`` ``[B, T, C]`` and return a boolean mask ``[B, T]`` (all True if None)."""
    if x.ndim != 3 or x.shape[-1] != in_channels:
        raise ValueError(f"x must be [B, T, {in_channels}], got {tuple(x.shape)}")
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask must be [B, T] = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    return mask.bool()


def max_pool_time(h: Tensor, mask: Tensor | None = None) -> Tensor:
    """Instance embedding ``[B, D]``: the max of ``h`` ``[B, T, D]`` over valid timesteps."""
    if mask is None:
        return h.amax(dim=1)
    return h.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).amax(dim=1)


def dropout_from(x: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Training-mode dropout of ``x`` (any shape) with draws from ``generator``: the same
    Bernoulli(1 - p) keep mask in ``x``'s memory order, scaled by 1 / (1 - p), that
    ``F.dropout`` draws from torch's global generator on the CPU (bit-identical for the same
    generator state)."""
    if p == 0:
        return x
    noise = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    return x * noise.div_(1 - p)


class _PerStepEncoder(nn.Module):
    """Base of the per-step encoders: ``embedding_dim`` is the width of the pooled instance
    embedding, i.e. ``output_dim``."""

    output_dim: int

    @property
    def embedding_dim(self) -> int:
        return self.output_dim


class SamePadConv(nn.Module):
    """Dilated 1-D convolution whose output has the input's length (TS2Vec's SamePadConv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 groups: int = 1):
        super().__init__()
        receptive = (kernel_size - 1) * dilation + 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size,
                              padding=receptive // 2, dilation=dilation, groups=groups)
        self.remove = 1 if receptive % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T] -> [B, C', T]
        out = self.conv(x)
        return out[:, :, :-self.remove] if self.remove else out


class ConvBlock(nn.Module):
    """GELU -> conv -> GELU -> conv, plus a (1x1-projected) residual. The first conv maps to
    ``mid_channels`` (default ``out_channels``); the second splits into ``out_groups`` channel
    groups, a cheap way to a wide output."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 final: bool = False, out_groups: int = 1, mid_channels: int | None = None):
        super().__init__()
        mid = mid_channels or out_channels
        self.conv1 = SamePadConv(in_channels, mid, kernel_size, dilation)
        self.conv2 = SamePadConv(mid, out_channels, kernel_size, dilation, out_groups)
        self.projector = (nn.Conv1d(in_channels, out_channels, 1)
                          if in_channels != out_channels or final else None)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T] -> [B, C', T]
        residual = x if self.projector is None else self.projector(x)
        x = self.conv2(F.gelu(self.conv1(F.gelu(x))))
        return x + residual


class DilatedConvEncoder(_PerStepEncoder):
    """TS2Vec's encoder (Yue et al. 2022): linear input projection, random timestamp masking
    while training (each hidden timestep kept with probability ``1 - mask_p``), ``depth``
    residual blocks with dilation ``2**i`` and a final block to ``output_dim``, dropout 0.1.
    ``final_mid`` / ``final_groups``: width of the final block's first conv and channel groups
    of its second (defaults: ``output_dim`` and 1, TS2Vec's); groups make a wide
    representation cheaper (docs/timeseries.md, representation width).

    ``forward(x [B, T, C], mask [B, T] | None, generator | None) -> [B, T, output_dim]``. The
    timestamp masking needs a ``generator`` and is only applied in training mode.
    """

    def __init__(self, in_channels: int, *, output_dim: int = 320, hidden_dim: int = 64,
                 depth: int = 10, kernel_size: int = 3, mask_p: float = 0.5,
                 dropout: float = 0.1, final_groups: int = 1, final_mid: int | None = None):
        super().__init__()
        if not 0.0 <= mask_p < 1.0:
            raise ValueError(f"mask_p must lie in [0, 1), got {mask_p}")
        mid = final_mid or output_dim
        if final_groups < 1 or output_dim % final_groups or mid % final_groups:
            raise ValueError(f"final_groups must be >= 1 and divide output_dim ({output_dim}) "
                             f"and final_mid ({mid}), got {final_groups}")
        self.in_channels, self.output_dim, self.mask_p = in_channels, output_dim, mask_p
        self.input_fc = nn.Linear(in_channels, hidden_dim)
        widths = [hidden_dim] * depth + [output_dim]
        last = len(widths) - 1
        self.blocks = nn.Sequential(*[
            ConvBlock(widths[i - 1] if i > 0 else hidden_dim, widths[i], kernel_size,
                      dilation=2 ** i, final=i == last,
                      out_groups=final_groups if i == last else 1,
                      mid_channels=final_mid if i == last else None)
            for i in range(len(widths))
        ])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None, *, keep: Tensor | None = None
                ) -> Tensor:
        """``keep`` ``[B, T]`` (training only): the timestamp mask to apply instead of drawing
        one from ``generator``. Dropout draws from ``generator`` when given, as
        :func:`dropout_from` does; from torch's global generator otherwise."""
        valid = _check_inputs(x, mask, self.in_channels)
        x = torch.nan_to_num(x) * valid.unsqueeze(-1)
        h = self.input_fc(x)  # [B, T, H]
        if self.training and keep is None and self.mask_p > 0 and generator is not None:
            keep = torch.rand(valid.shape, generator=generator) >= self.mask_p
        if self.training and keep is not None:
            valid = valid & keep.to(valid.device)
        h = self.blocks((h * valid.unsqueeze(-1)).transpose(1, 2))  # [B, D, T]
        # Dropout on the [B, D, T] layout, as TS2Vec does: the same draws hit the same values.
        if self.training and generator is not None:
            h = dropout_from(h, self.dropout.p, generator)
        else:
            h = self.dropout(h)
        return h.transpose(1, 2)


class CNN1dEncoder(_PerStepEncoder):
    """Plain 1-D CNN: ``layers`` conv(kernel 5, same padding) -> BatchNorm -> ReLU blocks, no
    down-sampling, so the output keeps one vector per timestep ``[B, T, output_dim]``."""

    def __init__(self, in_channels: int, *, output_dim: int = 128, hidden_dim: int = 64,
                 layers: int = 3, kernel_size: int = 5):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.in_channels, self.output_dim = in_channels, output_dim
        widths = [in_channels] + [hidden_dim] * (layers - 1) + [output_dim]
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Conv1d(widths[i], widths[i + 1], kernel_size, padding=kernel_size // 2),
                       nn.BatchNorm1d(widths[i + 1]), nn.ReLU()]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        valid = _check_inputs(x, mask, self.in_channels)
        x = torch.nan_to_num(x) * valid.unsqueeze(-1)
        return self.net(x.transpose(1, 2)).transpose(1, 2)


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """Vaswani et al.'s positional encoding ``[length, dim]``: sin on even, cos on odd
    columns with wavelengths ``10000 ** (2i / dim)``."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    return table


class TransformerTSEncoder(_PerStepEncoder):
    """Linear projection + sinusoidal positional encoding + ``layers`` pre-norm Transformer
    encoder layers; padded timesteps are excluded as keys. ``[B, T, C] -> [B, T, output_dim]``."""

    def __init__(self, in_channels: int, *, output_dim: int = 128, hidden_dim: int = 64,
                 layers: int = 2, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        if hidden_dim % heads or hidden_dim % 2:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be even and divisible by heads "
                             f"({heads})")
        self.in_channels, self.output_dim, self.hidden_dim = in_channels, output_dim, hidden_dim
        self.input_fc = nn.Linear(in_channels, hidden_dim)
        layer = nn.TransformerEncoderLayer(hidden_dim, heads, 2 * hidden_dim, dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.output_fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        valid = _check_inputs(x, mask, self.in_channels)
        x = torch.nan_to_num(x) * valid.unsqueeze(-1)
        h = self.input_fc(x) + sinusoidal_positions(x.shape[1], self.hidden_dim).to(x.device)
        h = self.encoder(h, src_key_padding_mask=~valid)
        return self.output_fc(h)


class RecurrentTSEncoder(_PerStepEncoder):
    """Bidirectional GRU or LSTM (``cell``) with a linear read-out ``[B, T, output_dim]``."""

    def __init__(self, in_channels: int, *, cell: str = "gru", output_dim: int = 128,
                 hidden_dim: int = 64, layers: int = 1):
        super().__init__()
        cells = {"gru": nn.GRU, "lstm": nn.LSTM}
        if cell not in cells:
            raise ValueError(f"cell must be one of {sorted(cells)}, got '{cell}'")
        self.in_channels, self.output_dim = in_channels, output_dim
        self.rnn = cells[cell](in_channels, hidden_dim, num_layers=layers, batch_first=True,
                               bidirectional=True)
        self.output_fc = nn.Linear(2 * hidden_dim, output_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        valid = _check_inputs(x, mask, self.in_channels)
        x = torch.nan_to_num(x) * valid.unsqueeze(-1)
        h, _ = self.rnn(x)
        return self.output_fc(h)


@torch.no_grad()
def encode_instances(model: nn.Module, x: Tensor, mask: Tensor, *, batch_size: int = 256,
                     device: torch.device | str = "cpu", pool_padding: bool = False) -> Tensor:
    """Frozen instance embeddings ``[N, D]`` of ``x`` ``[N, T, C]`` (mask ``[N, T]``): the
    encoder in eval mode, max-pooled over valid timesteps, or over all ``T`` steps when
    ``pool_padding`` (TS2Vec's full-series pooling; padded inputs are still zeroed)."""
    was_training = model.training
    model.eval().to(device)
    out = []
    for i in range(0, len(x), batch_size):
        valid = mask[i:i + batch_size].to(device)
        h = model(x[i:i + batch_size].to(device), valid)
        out.append(max_pool_time(h, None if pool_padding else valid).float().cpu())
    model.train(was_training)
    return torch.cat(out)


POOLING = ("padded_window", "observed_steps")
"""Where :func:`encode_splits` takes the max over time. ``padded_window`` is TS2Vec's
``encoding_window='full_series'``: every step of the padded array, so for a series shorter than
the array the encoder's outputs just past its end (which still see its last steps) count too;
``observed_steps`` keeps the series' own steps only. Equal-length sets give the same embedding
either way."""


def encode_splits(model: nn.Module, data: dict[str, Tensor], splits: tuple[str, ...] = (
        "train", "test"), *, pooling: str = "observed_steps") -> list[Tensor]:
    """:func:`encode_instances` of ``data["x_<split>"]`` ``[N, T, C]`` (mask
    ``data["mask_<split>"]``, all steps when absent) for each split, pooled as ``pooling``
    says (one of :data:`POOLING`)."""
    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, got '{pooling}'")
    out = []
    for split in splits:
        x = data[f"x_{split}"]
        mask = data.get(f"mask_{split}", torch.ones(x.shape[:2], dtype=torch.bool))
        out.append(encode_instances(model, x, mask, pool_padding=pooling == "padded_window"))
    return out
