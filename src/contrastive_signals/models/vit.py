"""A small Vision Transformer (Dosovitskiy et al. 2021) for digit-sized images.

``[B, C, H, W]`` images are cut into non-overlapping ``patch_size`` squares by a strided
convolution, a learned class token is prepended, learned position embeddings are added, and
``depth`` pre-norm Transformer blocks (:mod:`contrastive_signals.models.attention`) follow,
then a final LayerNorm. The embedding ``[B, embedding_dim]`` is the class token's output
(``pooling="cls"``) or the mean of the patch tokens' outputs (``pooling="mean"``; the class
token still takes part in attention, so attention maps exist for both poolings).

Defaults suit the 28x28 digits (tuned in ``benchmarks/vit_digits.py``): 7x7 patches (a 4x4
grid; the embedded digits are 8x8 images upsampled, so a patch covers 2x2 of their pixels),
width 64, 4 blocks of 4 heads, class-token pooling (so the attention maps show where the
embedding is read from). ``patch_size=4`` gives finer 7x7 maps for 2.7x the training time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastive_signals.models.attention import (
    TransformerBlock,
    check_heads,
    init_transformer_weights,
)

POOLINGS = ("cls", "mean")


class VisionTransformer(nn.Module):
    """ViT encoder ``[B, in_channels, image_size, image_size] -> [B, embedding_dim]``.

    Args:
        in_channels: image channels.
        image_size: side of the (square) input images; a multiple of ``patch_size``.
        patch_size: side of the square patches (also the patch convolution's stride).
        embedding_dim: token width, which is also the embedding width; divisible by ``heads``.
        depth: number of Transformer blocks.
        heads: attention heads per block.
        mlp_ratio: MLP width over token width in each block.
        pooling: ``"cls"`` (the class token) or ``"mean"`` (mean of the patch tokens).
        dropout: dropout in the blocks (attention output and MLP), training mode only.
        num_classes: ``0``: ``forward`` is the embedding; ``> 0``: a linear classification head
            on it, ``forward`` returns logits ``[B, num_classes]`` and ``embed`` the embedding.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, patch_size: int = 7,
                 embedding_dim: int = 64, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 2.0, pooling: str = "cls", dropout: float = 0.0,
                 num_classes: int = 0):
        super().__init__()
        if in_channels < 1 or depth < 1 or patch_size < 1:
            raise ValueError(f"in_channels ({in_channels}), depth ({depth}) and patch_size "
                             f"({patch_size}) must be >= 1")
        if image_size < patch_size or image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size "
                             f"({patch_size})")
        check_heads(embedding_dim, heads, width_name="embedding_dim")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got '{pooling}'")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.in_channels, self.image_size, self.patch_size = in_channels, image_size, patch_size
        self.grid = image_size // patch_size
        self.embedding_dim, self.pooling = embedding_dim, pooling
        self.patch_embed = nn.Conv2d(in_channels, embedding_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embedding_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid ** 2, embedding_dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(embedding_dim, heads, mlp_ratio=mlp_ratio, dropout=dropout)
            for _ in range(depth))
        self.norm = nn.LayerNorm(embedding_dim)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(init_transformer_weights)
        # built last, so a classifier's encoder weights equal those of the plain encoder
        self.head = nn.Linear(embedding_dim, num_classes) if num_classes else None

    def _tokens(self, images: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> class token + patch tokens with positions ``[B, 1 + N, D]``."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must be [B, {', '.join(map(str, expected))}], got "
                             f"{tuple(images.shape)}")
        patches = self.patch_embed(images).flatten(2).transpose(1, 2)  # [B, N, D]
        cls = self.cls_token.expand(len(images), -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def _pool(self, tokens: Tensor) -> Tensor:
        """Final LayerNorm, then the class token or the patch-token mean: ``[B, D]``."""
        tokens = self.norm(tokens)
        return tokens[:, 0] if self.pooling == "cls" else tokens[:, 1:].mean(dim=1)

    def embed(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, embedding_dim]`` (fused attention kernels). Dropout, when
        enabled, draws from ``generator`` if one is given."""
        tokens = self._tokens(images)
        for block in self.blocks:
            tokens = block(tokens, generator=generator)
        return self._pool(tokens)

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The embedding ``[B, embedding_dim]``, or logits ``[B, num_classes]`` with a head."""
        z = self.embed(images, generator)
        return z if self.head is None else self.head(z)

    def last_attention(self, images: Tensor) -> Tensor:
        """Softmax attention weights of the last block ``[B, heads, 1 + N, 1 + N]``, token 0
        being the class token and tokens ``1..N`` the patches in row-major order. Each row (a
        query's distribution over the ``1 + N`` keys) sums to 1."""
        tokens = self._tokens(images)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        return self.blocks[-1].forward_with_weights(tokens)[1]

    def attention_maps(self, images: Tensor) -> Tensor:
        """Where the class token looks in the last block, as pictures ``[B, H/p, W/p]``.

        The mean over heads of the class token's attention row, without its entry for the
        class token itself: so ``maps.sum((1, 2)) + cls_self == 1``, where ``cls_self`` is the
        head-mean of the class token's attention to itself
        (``last_attention(images)[:, :, 0, 0].mean(1)``). Every value lies in [0, 1]. Call it
        in eval mode (and under ``torch.no_grad()`` for plots).
        """
        row = self.last_attention(images)[:, :, 0, 1:].mean(dim=1)  # [B, N]
        return row.reshape(-1, self.grid, self.grid)
