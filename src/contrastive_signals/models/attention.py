"""Pre-norm Transformer blocks whose attention weights can be read out.

Shared by the Vision Transformer (:mod:`contrastive_signals.models.vit`) and the patch
Transformer for series (:mod:`contrastive_signals.models.patch_transformer`). The forward pass
uses :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels); a second path
computes the same attention explicitly and returns the softmax weights, for attention maps.

Dropout (on the attention output projection and in the MLP, never on the attention weights)
draws from an explicit ``generator`` when one is given (:func:`dropout_from`), so a training
step is reproducible; without a generator it falls back to ``F.dropout``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.models.ts_encoders import dropout_from


def check_heads(width: int, heads: int, *, width_name: str) -> None:
    """A ``ValueError`` naming both parameters unless ``heads >= 1`` divides ``width``."""
    if heads < 1 or width < 1 or width % heads:
        raise ValueError(f"heads ({heads}) must be >= 1 and divide {width_name} ({width})")


def dropout(x: Tensor, p: float, *, training: bool, generator: torch.Generator | None) -> Tensor:
    """Dropout of ``x`` (any shape) in training mode: from ``generator`` when given, else from
    torch's global generator; the identity in eval mode or with ``p == 0``."""
    if not training or p == 0:
        return x
    if generator is None:
        return F.dropout(x, p, training=True)
    if x.device == generator.device:
        return dropout_from(x, p, generator)
    # a CPU generator for a CUDA tensor: draw the same mask on the CPU and move it
    return x * dropout_from(torch.ones(x.shape), p, generator).to(x.device, x.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention ``[B, N, D] -> [B, N, D]`` with a fused QKV projection.

    ``key_mask`` ``[B, N]`` (``True`` = may be attended to) removes tokens as keys; every row
    must keep at least one key.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        check_heads(width, heads, width_name="width")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def _split_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, N, D]`` -> ``q, k, v`` each ``[B, heads, N, D / heads]``."""
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, d // self.heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def _merge_heads(self, out: Tensor) -> Tensor:
        """``[B, heads, N, D / heads]`` -> projected ``[B, N, D]``."""
        b, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """Fused attention ``[B, N, D] -> [B, N, D]``."""
        q, k, v = self._split_heads(x)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        return self._merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

    def forward_with_weights(self, x: Tensor, key_mask: Tensor | None = None
                             ) -> tuple[Tensor, Tensor]:
        """The same attention computed explicitly: ``(out [B, N, D], weights [B, heads, N, N])``,
        where ``weights[b, h, i]`` is query ``i``'s softmax over the keys (each row sums to 1;
        masked keys get 0)."""
        q, k, v = self._split_heads(x)
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        return self._merge_heads(weights @ v), weights


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block: ``x + attn(LN(x))`` then ``x + MLP(LN(x))`` with a GELU MLP
    of width ``mlp_ratio * width``. ``[B, N, width] -> [B, N, width]``."""

    def __init__(self, width: int, heads: int, *, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        if not mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be > 0, got {mlp_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        hidden = max(1, round(mlp_ratio * width))
        self.p = dropout
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def _mlp(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        h = dropout(F.gelu(self.fc1(self.norm2(x))), self.p, training=self.training,
                    generator=generator)
        return dropout(self.fc2(h), self.p, training=self.training, generator=generator)

    def forward(self, x: Tensor, key_mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """``[B, N, width]`` (``key_mask`` ``[B, N]``) -> ``[B, N, width]``."""
        attended = self.attn(self.norm1(x), key_mask)
        x = x + dropout(attended, self.p, training=self.training, generator=generator)
        return x + self._mlp(x, generator)

    def forward_with_weights(self, x: Tensor, key_mask: Tensor | None = None,
                             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`forward` plus the attention weights ``[B, heads, N, N]``."""
        attended, weights = self.attn.forward_with_weights(self.norm1(x), key_mask)
        x = x + dropout(attended, self.p, training=self.training, generator=generator)
        return x + self._mlp(x, generator), weights


def init_transformer_weights(module: nn.Module) -> None:
    """timm's ViT initialisation, for ``module.apply``: linear weights truncated normal (std
    0.02) with zero biases; LayerNorms at identity."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
