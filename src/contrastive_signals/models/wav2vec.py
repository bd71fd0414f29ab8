"""wav2vec 2.0-style network for raw 1-D signals (Baevski et al., 2020).

Raw signal ``[B, C, L]`` -> a feature encoder from the registry (``w2v_conv``: wav2vec 2.0's
strided convolutions, here as :class:`ConvFeatureEncoder`; ``sleep_cnn``: the sleep stager's
epoch CNN, so its weights can initialise :class:`~contrastive_signals.models.sleep.SleepStager`)
-> latent frames ``z`` ``[B, T, D]``:

- a span mask hides some frames (``mask_prob`` of the start positions, each masking
  ``mask_span`` frames; spans may overlap), replaced by one learned mask vector;
- a Transformer context network (with a convolutional relative positional embedding, as
  wav2vec 2.0) reads the masked frames and gives context vectors ``c``;
- a product quantiser (``groups`` codebooks of ``entries`` codewords, Gumbel-softmax with
  straight-through hard choices and an annealed temperature) turns the *unmasked* latents
  into targets ``q``.

The losses are in :mod:`contrastive_signals.losses.wav2vec`; the training recipe (objective,
temperature schedule, collapse monitor) is :class:`contrastive_signals.methods.wav2vec.Wav2VecMethod`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastive_signals.losses.hubert import cluster_logits
from contrastive_signals.losses.wav2vec import perplexity

# wav2vec 2.0's feature encoder scaled down: (channels, kernel, stride) per layer.
DEFAULT_CONV_LAYERS: tuple[tuple[int, int, int], ...] = (
    (32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 2, 2))


# ------------------------------------------------------------------------ encoder


class ConvFeatureEncoder(nn.Module):
    """wav2vec 2.0's feature encoder: strided 1-D convolutions, group norm after the first,
    GELU after each. ``[B, C, L]`` -> ``[B, D, T]`` with D the last layer's channels."""

    def __init__(self, in_channels: int, layers: Sequence[Sequence[int]] = DEFAULT_CONV_LAYERS,
                 *, dropout: float = 0.0) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = in_channels
        for i, (out, kernel, stride) in enumerate(layers):
            blocks.append(nn.Conv1d(channels, out, kernel_size=kernel, stride=stride, bias=False))
            if i == 0:
                blocks.append(nn.GroupNorm(out, out))
            blocks += [nn.GELU(), nn.Dropout(dropout)]
            channels = out
        self.layers = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ------------------------------------------------------------------------ masking


def span_mask(batch: int, frames: int, *, mask_prob: float, span: int,
              generator: torch.Generator, min_spans: int = 2) -> torch.Tensor:
    """wav2vec 2.0's span mask: in each row, ``round(mask_prob * frames / span)`` (randomly
    rounded, at least ``min_spans``) distinct start frames, each masking ``span`` frames;
    spans may overlap, so the masked share is a little below ``mask_prob``.

    Returns:
        ``[batch, frames]`` bool; every row has at least ``min(min_spans, frames - span + 1)``
        masked frames (>= 2 when ``span >= 2`` or ``min_spans >= 2``).
    """
    if not 0 < mask_prob <= 1:
        raise ValueError(f"mask_prob must lie in (0, 1], got {mask_prob}")
    if span < 1:
        raise ValueError(f"mask span must be >= 1, got {span}")
    if frames < span + 1:
        raise ValueError(f"{frames} frames are too few for mask spans of {span}; use longer "
                         "inputs or a shorter span")
    starts_available = frames - span + 1
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    expected = mask_prob * frames / span
    offsets = torch.arange(span)
    for row in range(batch):
        count = int(expected + float(torch.rand((), generator=generator)))
        count = min(max(count, min_spans), starts_available)
        starts = torch.randperm(starts_available, generator=generator)[:count]
        mask[row, (starts[:, None] + offsets).flatten()] = True
    return mask


# ---------------------------------------------------------------------- quantiser


def gumbel_temperature(step: int, *, total_steps: int, start: float, end: float) -> float:
    """Gumbel-softmax temperature annealed geometrically from ``start`` (step 0) to ``end``
    (last step), as wav2vec 2.0's ``max(start * decay ** step, end)`` with the decay set by the
    run's length."""
    if total_steps <= 1:
        return end
    progress = min(max(step / (total_steps - 1), 0.0), 1.0)
    return start * (end / start) ** progress


class GumbelQuantizer(nn.Module):
    """Product quantiser: ``groups`` codebooks of ``entries`` codewords of size
    ``code_dim / groups``; a latent picks one codeword per group and the choices are
    concatenated.

    In training the choice is a hard Gumbel-softmax sample (straight-through gradient) drawn
    from ``generator``; in eval mode it is the argmax.
    """

    def __init__(self, in_dim: int, *, groups: int, entries: int, code_dim: int) -> None:
        super().__init__()
        if code_dim % groups:
            raise ValueError(f"code_dim ({code_dim}) must be divisible by groups ({groups})")
        self.groups, self.entries = groups, entries
        self.logits = nn.Linear(in_dim, groups * entries)
        nn.init.normal_(self.logits.weight, std=1.0)
        nn.init.zeros_(self.logits.bias)
        self.codebook = nn.Parameter(torch.rand(groups, entries, code_dim // groups))

    def forward(self, z: torch.Tensor, *, temperature: float,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``z`` ``[N, in_dim]`` -> ``{"quantized": [N, code_dim], "codes": [N, G] int64,
        "probs": [G, V] soft codeword use averaged over N, "prob_perplexity",
        "code_perplexity"}`` (perplexities of the soft and of the hard choices)."""
        logits = self.logits(z).float().view(-1, self.groups, self.entries)   # [N, G, V]
        codes = logits.argmax(-1)
        hard = F.one_hot(codes, self.entries).to(logits.dtype)
        if self.training:
            if generator is None:
                raise ValueError("the quantiser needs a generator in training mode")
            u = torch.rand(logits.shape, generator=generator).to(logits.device)
            gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
            soft = F.softmax((logits + gumbel) / temperature, dim=-1)
            codes = soft.argmax(-1)
            hard = F.one_hot(codes, self.entries).to(soft.dtype)
            choice = hard - soft.detach() + soft                             # straight-through
        else:
            choice = hard
        quantized = torch.einsum("ngv,gvd->ngd", choice, self.codebook.float()).flatten(1)
        probs = F.softmax(logits, dim=-1).mean(0)
        return {"quantized": quantized, "codes": codes, "probs": probs,
                "prob_perplexity": perplexity(probs),
                "code_perplexity": perplexity(hard.mean(0)).detach()}


# --------------------------------------------------------------- context network

CONTEXT_PARTS = ("feature_norm", "project", "pos_conv", "context_norm", "transformer")


def contextualise(y: torch.Tensor, *, pos_conv: nn.Conv1d, norm: nn.LayerNorm,
                  transformer: nn.TransformerEncoder, dropout: nn.Dropout) -> torch.Tensor:
    """wav2vec 2.0's context network on projected frames ``y`` ``[B, T, D]`` -> ``[B, T, D]``:
    the convolutional relative positional embedding (GELU, added), layer norm, dropout,
    Transformer."""
    position = pos_conv(y.transpose(1, 2))[..., :y.shape[1]]
    y = norm(y + F.gelu(position).transpose(1, 2))
    return transformer(dropout(y))


def context_layers(model_dim: int, *, layers: int, heads: int, ff_dim: int, pos_conv_kernel: int,
                   pos_conv_groups: int, dropout: float
                   ) -> tuple[nn.Conv1d, nn.LayerNorm, nn.TransformerEncoder]:
    """The positional convolution, its norm and the pre-LN Transformer of the context network
    (built in this order, so the parameter draws follow it)."""
    pos_conv = nn.Conv1d(model_dim, model_dim, kernel_size=pos_conv_kernel,
                         padding=pos_conv_kernel // 2, groups=pos_conv_groups)
    norm = nn.LayerNorm(model_dim)
    layer = nn.TransformerEncoderLayer(model_dim, heads, ff_dim, dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
    return pos_conv, norm, nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class FrameContext(nn.Module):
    """The context network of :class:`Wav2Vec2` without masking or quantiser, for fine-tuning
    downstream: encoder frames ``[B, T, feature_dim]`` -> context vectors ``[B, T, model_dim]``
    (layer norm, projection, dropout, :func:`contextualise`). Its parameter names are those of
    :class:`Wav2Vec2`, so :func:`frame_context_state` of a pretrained model loads into it."""

    def __init__(self, feature_dim: int, *, model_dim: int = 64, layers: int = 2, heads: int = 4,
                 ff_dim: int = 128, pos_conv_kernel: int = 9, pos_conv_groups: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.feature_norm = nn.LayerNorm(feature_dim)
        self.project = nn.Linear(feature_dim, model_dim)
        self.pos_conv, self.context_norm, self.transformer = context_layers(
            model_dim, layers=layers, heads=heads, ff_dim=ff_dim, pos_conv_kernel=pos_conv_kernel,
            pos_conv_groups=pos_conv_groups, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.model_dim = model_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.dropout(self.project(self.feature_norm(z)))
        return contextualise(y, pos_conv=self.pos_conv, norm=self.context_norm,
                             transformer=self.transformer, dropout=self.dropout)


class ContextualFrameEncoder(nn.Module):
    """A frame encoder ``[B, C, L]`` -> ``[B, feature_dim, T]`` followed by a
    :class:`FrameContext`: ``[B, C, L]`` -> ``[B, model_dim, T]`` (frames, like the encoder
    alone). What :meth:`~contrastive_signals.methods.wav2vec.Wav2VecMethod.export` hands
    downstream when the context network is to be fine-tuned too."""

    def __init__(self, features: nn.Module, context: FrameContext) -> None:
        super().__init__()
        self.features = features
        self.context = context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.context(self.features(x).transpose(1, 2)).transpose(1, 2)


def frame_context_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``model``'s context network (a :class:`Wav2Vec2` or a
    :class:`FrameContext`) under :class:`FrameContext`'s names."""
    return {key: value for key, value in model.state_dict().items()
            if key.split(".", 1)[0] in CONTEXT_PARTS}


# ------------------------------------------------------------------- cluster head


class ClusterHead(nn.Module):
    """HuBERT's prediction head for ``groups`` target groups of ``clusters`` clusters: a linear
    projection of a context vector per group, scored by cosine against learned cluster
    embeddings / ``temperature``. ``[M, model_dim]`` -> logits ``[M, groups, clusters]``."""

    def __init__(self, model_dim: int, *, groups: int, clusters: int, final_dim: int,
                 temperature: float = 0.1) -> None:
        super().__init__()
        if groups < 1 or clusters < 2:
            raise ValueError(f"a cluster head needs groups >= 1 and clusters >= 2, got {groups}, "
                             f"{clusters}")
        self.project = nn.Linear(model_dim, groups * final_dim)
        self.embeddings = nn.Parameter(torch.randn(groups, clusters, final_dim))
        self.groups, self.temperature = groups, temperature

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        predicted = self.project(context).view(len(context), self.groups, -1)
        return cluster_logits(predicted, self.embeddings, temperature=self.temperature)


# ------------------------------------------------------------------------- model


class Wav2Vec2(nn.Module):
    """Feature encoder + masking + Transformer context network + product quantiser, and/or,
    with ``cluster_groups``, HuBERT's cluster head (``quantizer=False``: the head alone, no
    quantiser and projections).

    Built around any frame encoder ``[B, C, L]`` -> ``[B, feature_dim, T]`` (a ``frames``
    entry of the registry); the parameters after it are drawn in the order below.

    ``forward(x, mask_prob=, mask_span=, temperature=, generator=)`` with ``x`` ``[B, C, L]``
    returns a dict: ``context`` and ``quantized`` ``[M, final_dim]`` for the M masked frames
    (row-major order), ``mask`` ``[B, T]``, ``probs`` ``[G, V]``, the perplexities and
    ``feature_penalty`` (mean squared encoder feature); with a cluster head also ``logits``
    ``[M, cluster_groups, clusters]`` (float32); without the quantiser only ``logits``,
    ``mask`` and ``feature_penalty``.
    """

    def __init__(self, feature_encoder: nn.Module, feature_dim: int, *, model_dim: int = 64,
                 layers: int = 2, heads: int = 4, ff_dim: int = 128, pos_conv_kernel: int = 9,
                 pos_conv_groups: int = 4, dropout: float = 0.1, codebook_groups: int = 2,
                 codebook_entries: int = 32, code_dim: int = 64, final_dim: int = 64,
                 cluster_groups: int = 0, clusters: int = 0,
                 cluster_temperature: float = 0.1, quantizer: bool = True) -> None:
        super().__init__()
        self.feature_encoder = feature_encoder
        self.feature_norm = nn.LayerNorm(feature_dim)
        self.project = nn.Linear(feature_dim, model_dim)
        self.mask_embedding = nn.Parameter(torch.rand(model_dim))
        # Relative positional embedding: a grouped convolution over time, added to its input.
        self.pos_conv, self.context_norm, self.transformer = context_layers(
            model_dim, layers=layers, heads=heads, ff_dim=ff_dim, pos_conv_kernel=pos_conv_kernel,
            pos_conv_groups=pos_conv_groups, dropout=dropout)
        if not cluster_groups and not quantizer:
            raise ValueError("a wav2vec network needs the quantiser, a cluster head or both")
        if cluster_groups:
            self.cluster_head = ClusterHead(model_dim, groups=cluster_groups, clusters=clusters,
                                            final_dim=final_dim, temperature=cluster_temperature)
        if quantizer:
            self.final_proj = nn.Linear(model_dim, final_dim)
            self.quantizer = GumbelQuantizer(feature_dim, groups=codebook_groups,
                                             entries=codebook_entries, code_dim=code_dim)
            self.project_q = nn.Linear(code_dim, final_dim)
        self.dropout = nn.Dropout(dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder frames ``[B, T, feature_dim]`` of ``x`` ``[B, C, L]`` (before the norm)."""
        return self.feature_encoder(x).transpose(1, 2)

    def contextualise(self, y: torch.Tensor) -> torch.Tensor:
        """Context vectors ``[B, T, model_dim]`` of projected (masked) frames ``y``."""
        return contextualise(y, pos_conv=self.pos_conv, norm=self.context_norm,
                             transformer=self.transformer, dropout=self.dropout)

    def masked_context(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Context vectors ``[B, T, model_dim]`` of normalised frames ``z`` ``[B, T, Df]`` with
        the frames of ``mask`` ``[B, T]`` replaced by the learned mask embedding."""
        y = self.dropout(self.project(z))
        y = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(y.dtype), y)
        return self.contextualise(y)

    def forward(self, x: torch.Tensor, *, mask_prob: float, mask_span: int, temperature: float,
                generator: torch.Generator) -> dict[str, torch.Tensor]:
        z = self.features(x)                                       # [B, T, Df]
        feature_penalty = z.float().pow(2).mean()
        z = self.feature_norm(z)
        mask = span_mask(z.shape[0], z.shape[1], mask_prob=mask_prob, span=mask_span,
                         generator=generator).to(z.device)
        hidden = self.masked_context(z, mask)                       # [B, T, D]
        out = {"mask": mask, "feature_penalty": feature_penalty}
        if hasattr(self, "cluster_head"):
            out["logits"] = self.cluster_head(hidden[mask])
        if not hasattr(self, "quantizer"):
            return out
        context = self.final_proj(hidden)                           # [B, T, F]
        quantizer = self.quantizer(z.flatten(0, 1), temperature=temperature, generator=generator)
        quantized = self.project_q(quantizer["quantized"].to(context.dtype))
        quantized = quantized.view(*mask.shape, -1)
        return {**out, "context": context[mask], "quantized": quantized[mask],
                "probs": quantizer["probs"], "prob_perplexity": quantizer["prob_perplexity"],
                "code_perplexity": quantizer["code_perplexity"]}
