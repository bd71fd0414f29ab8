"""A PatchTST-style patch Transformer (Nie et al. 2023) as a per-step series encoder.

Each channel of ``x`` ``[B, T, C]`` is cut into patches of ``patch_len`` steps every
``stride`` steps and encoded on its own with shared weights (channel independence): a linear
patch embedding, learned positional embeddings over patch positions and ``layers`` pre-norm
Transformer blocks (:mod:`contrastive_signals.models.attention`). The channels' patch tokens
are then concatenated and mixed by one linear layer into ``output_dim``, and every time step
takes the token of the patch that starts at or last before it (patch ``min(t // stride,
P - 1)``), so the output is per step ``[B, T, output_dim]`` like the other encoders of
:mod:`contrastive_signals.models.ts_encoders` (max pooling and TS2Vec's hierarchical loss work
unchanged).

Any length works: the end is zero-padded up to the last patch. Padded steps (``mask`` False)
are zeroed at the input, and patches holding no valid step are excluded as attention keys.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastive_signals.models.attention import (
    TransformerBlock,
    check_heads,
    init_transformer_weights,
)
from contrastive_signals.models.ts_encoders import _check_inputs


def patch_count(length: int, patch_len: int, stride: int) -> int:
    """Number of patches covering ``length`` steps: ``ceil(max(length - patch_len, 0) /
    stride) + 1``; the series is zero-padded to ``(count - 1) * stride + patch_len`` steps."""
    return -(-max(length - patch_len, 0) // stride) + 1


class PatchTransformerEncoder(nn.Module):
    """Patch Transformer ``x [B, T, C]`` (mask ``[B, T]``) -> ``[B, T, output_dim]``.

    Args:
        in_channels: input channels C.
        output_dim: width of the per-step output.
        hidden_dim: token width inside the Transformer (per channel); divisible by ``heads``.
        patch_len: steps per patch.
        stride: steps between patch starts, ``1 <= stride <= patch_len``.
        layers: Transformer blocks.
        heads: attention heads.
        mlp_ratio: MLP width over ``hidden_dim``.
        dropout: dropout in the blocks (training mode; from ``generator`` when given).
        max_patches: patches the positional embedding covers; longer series are rejected.
    """

    def __init__(self, in_channels: int, *, output_dim: int = 128, hidden_dim: int = 64,
                 patch_len: int = 8, stride: int = 8, layers: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, dropout: float = 0.1, max_patches: int = 512):
        super().__init__()
        if min(in_channels, output_dim, layers, max_patches) < 1:
            raise ValueError(f"in_channels ({in_channels}), output_dim ({output_dim}), layers "
                             f"({layers}) and max_patches ({max_patches}) must be >= 1")
        if not 1 <= stride <= patch_len:
            raise ValueError(f"need 1 <= stride ({stride}) <= patch_len ({patch_len})")
        check_heads(hidden_dim, heads, width_name="hidden_dim")
        self.in_channels, self.output_dim, self.embedding_dim = in_channels, output_dim, output_dim
        self.patch_len, self.stride, self.max_patches = patch_len, stride, max_patches
        self.patch_embed = nn.Linear(patch_len, hidden_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_patches, hidden_dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden_dim, heads, mlp_ratio=mlp_ratio, dropout=dropout)
            for _ in range(layers))
        self.norm = nn.LayerNorm(hidden_dim)
        self.mix = nn.Linear(in_channels * hidden_dim, output_dim)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_transformer_weights)

    def _patches(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """``x [B, T, C]`` (already zeroed where invalid) -> per-channel patches
        ``[B * C, P, patch_len]`` and their key mask ``[B * C, P]`` (True: holds a valid step;
        a row with no valid patch keeps all, so attention stays defined)."""
        b, t, c = x.shape
        count = patch_count(t, self.patch_len, self.stride)
        if count > self.max_patches:
            raise ValueError(f"a series of {t} steps makes {count} patches, more than "
                             f"max_patches ({self.max_patches})")
        pad = (count - 1) * self.stride + self.patch_len - t
        series = nn.functional.pad(x.transpose(1, 2), (0, pad))  # [B, C, T + pad]
        patches = series.unfold(-1, self.patch_len, self.stride)  # [B, C, P, patch_len]
        steps = nn.functional.pad(valid.float(), (0, pad)).unfold(-1, self.patch_len,
                                                                  self.stride)  # [B, P, L]
        keys = steps.amax(dim=-1) > 0
        keys = keys | ~keys.any(dim=1, keepdim=True)
        keys = keys.repeat_interleave(c, dim=0)  # [B * C, P], channel-major like patches
        return patches.reshape(b * c, count, self.patch_len), keys

    def forward(self, x: Tensor, mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """``x`` ``[B, T, C]``, ``mask`` ``[B, T]`` (None: all valid) -> ``[B, T, output_dim]``.
        Dropout draws from ``generator`` when given (training mode only)."""
        valid = _check_inputs(x, mask, self.in_channels)
        x = torch.nan_to_num(x) * valid.unsqueeze(-1)
        b, t, c = x.shape
        patches, keys = self._patches(x, valid)
        tokens = self.patch_embed(patches) + self.pos_embed[:, :patches.shape[1]]
        for block in self.blocks:
            tokens = block(tokens, keys, generator)
        tokens = self.norm(tokens)  # [B * C, P, H]
        mixed = self.mix(tokens.view(b, c, *tokens.shape[1:]).permute(0, 2, 1, 3).flatten(2))
        owner = (torch.arange(t, device=x.device) // self.stride).clamp(max=mixed.shape[1] - 1)
        return mixed[:, owner]  # [B, T, output_dim]
