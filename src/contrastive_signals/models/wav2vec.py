"""wav2vec 2.0-style self-supervised pretraining for raw 1-D signals (Baevski et al., 2020).

Raw signal ``[B, C, L]`` -> convolutional feature encoder -> latent frames ``z`` ``[B, T, D]``:

- a span mask hides some frames (``mask_prob`` of the start positions, each masking
  ``mask_span`` frames; spans may overlap), replaced by one learned mask vector;
- a Transformer context network (with a convolutional relative positional embedding, as
  wav2vec 2.0) reads the masked frames and gives context vectors ``c``;
- a product quantiser (``groups`` codebooks of ``entries`` codewords, Gumbel-softmax with
  straight-through hard choices and an annealed temperature) turns the *unmasked* latents
  into targets ``q``;
- the losses (:mod:`contrastive_signals.losses.wav2vec`): each masked ``c_t`` must pick
  ``q_t`` among distractors from other masked frames of the same sequence, plus the codebook
  diversity loss and a small L2 penalty on the encoder features.

The feature encoder is either wav2vec 2.0's stack of strided convolutions (``"conv"``) or the
sleep stager's epoch CNN (``"sleep_cnn"``, :func:`contrastive_signals.models.sleep.epoch_feature_layers`)
so its weights can initialise :class:`~contrastive_signals.models.sleep.SleepStager`.

Also here: the pretraining loop, guarded against the known failure modes: codebook collapse
(perplexity and contrastive accuracy logged per epoch, a warning when the codebook collapses)
and NaN spikes (float32 logits, gradient clipping, non-finite steps skipped and counted, a
clear error when they keep happening).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from contrastive_signals.config import require_positive
from contrastive_signals.losses.wav2vec import (
    diversity_loss,
    perplexity,
    sample_cross_distractors,
    sample_distractors,
    wav2vec_contrastive_loss,
)
from contrastive_signals.models.sleep import epoch_feature_layers
from contrastive_signals.training.device import resolve_device
from contrastive_signals.training.fit import FitConfig, learning_rate_factor, to_device

logger = logging.getLogger(__name__)

ENCODERS = ("conv", "sleep_cnn")
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


def build_feature_encoder(encoder: str, in_channels: int, *, base_channels: int,
                          conv_layers: Sequence[Sequence[int]], dropout: float
                          ) -> tuple[nn.Module, int]:
    """The feature encoder named ``encoder`` and its output channels."""
    if encoder == "conv":
        module = ConvFeatureEncoder(in_channels, conv_layers, dropout=dropout)
        return module, module.out_channels
    if encoder == "sleep_cnn":
        return (epoch_feature_layers(in_channels, base_channels=base_channels, dropout=dropout),
                2 * base_channels)
    raise ValueError(f"unknown feature encoder '{encoder}'; choose one of {ENCODERS}")


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


# ------------------------------------------------------------------------- model


class Wav2Vec2(nn.Module):
    """Feature encoder + masking + Transformer context network + product quantiser.

    ``forward(x, mask_prob=, mask_span=, temperature=, generator=)`` with ``x`` ``[B, C, L]``
    returns a dict: ``context`` and ``quantized`` ``[M, final_dim]`` for the M masked frames
    (row-major order), ``mask`` ``[B, T]``, ``probs`` ``[G, V]``, the perplexities and
    ``feature_penalty`` (mean squared encoder feature).
    """

    def __init__(self, in_channels: int, *, encoder: str = "conv", base_channels: int = 16,
                 conv_layers: Sequence[Sequence[int]] = DEFAULT_CONV_LAYERS,
                 encoder_dropout: float = 0.0, model_dim: int = 64, layers: int = 2,
                 heads: int = 4, ff_dim: int = 128, pos_conv_kernel: int = 9,
                 pos_conv_groups: int = 4, dropout: float = 0.1, codebook_groups: int = 2,
                 codebook_entries: int = 32, code_dim: int = 64, final_dim: int = 64) -> None:
        super().__init__()
        self.feature_encoder, feature_dim = build_feature_encoder(
            encoder, in_channels, base_channels=base_channels, conv_layers=conv_layers,
            dropout=encoder_dropout)
        self.feature_norm = nn.LayerNorm(feature_dim)
        self.project = nn.Linear(feature_dim, model_dim)
        self.mask_embedding = nn.Parameter(torch.rand(model_dim))
        # Relative positional embedding: a grouped convolution over time, added to its input.
        self.pos_conv = nn.Conv1d(model_dim, model_dim, kernel_size=pos_conv_kernel,
                                  padding=pos_conv_kernel // 2, groups=pos_conv_groups)
        self.context_norm = nn.LayerNorm(model_dim)
        layer = nn.TransformerEncoderLayer(model_dim, heads, ff_dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
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
        position = self.pos_conv(y.transpose(1, 2))[..., :y.shape[1]]
        y = self.context_norm(y + F.gelu(position).transpose(1, 2))
        return self.transformer(self.dropout(y))

    def forward(self, x: torch.Tensor, *, mask_prob: float, mask_span: int, temperature: float,
                generator: torch.Generator) -> dict[str, torch.Tensor]:
        z = self.features(x)                                       # [B, T, Df]
        feature_penalty = z.float().pow(2).mean()
        z = self.feature_norm(z)
        mask = span_mask(z.shape[0], z.shape[1], mask_prob=mask_prob, span=mask_span,
                         generator=generator).to(z.device)
        y = self.dropout(self.project(z))
        y = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(y.dtype), y)
        context = self.final_proj(self.contextualise(y))           # [B, T, F]
        quantizer = self.quantizer(z.flatten(0, 1), temperature=temperature, generator=generator)
        quantized = self.project_q(quantizer["quantized"].to(context.dtype))
        quantized = quantized.view(*mask.shape, -1)
        return {"context": context[mask], "quantized": quantized[mask], "mask": mask,
                "probs": quantizer["probs"], "prob_perplexity": quantizer["prob_perplexity"],
                "code_perplexity": quantizer["code_perplexity"],
                "feature_penalty": feature_penalty}


# ----------------------------------------------------------------- pretraining loop


@dataclass(frozen=True)
class Wav2VecObjective:
    """Masking and loss settings (wav2vec 2.0's defaults where they carry over)."""

    mask_prob: float = 0.65          # share of frames picked as span starts
    mask_span: int = 3               # frames per masked span
    num_negatives: int = 20          # distractors K per masked frame, from the same sequence
    cross_sample_negatives: int = 0  # extra distractors from any sequence of the batch
    logit_temperature: float = 0.1   # kappa of the cosine logits
    diversity_weight: float = 0.1    # alpha
    feature_penalty_weight: float = 1.0
    gumbel_start: float = 2.0        # Gumbel temperature, annealed geometrically per step
    gumbel_end: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.mask_prob <= 1:
            raise ValueError(f"mask_prob must lie in (0, 1], got {self.mask_prob}")
        if self.cross_sample_negatives < 0:
            raise ValueError(f"cross_sample_negatives must be >= 0, got {self.cross_sample_negatives}")
        if self.mask_span < 1 or self.num_negatives < 1:
            raise ValueError(f"mask_span and num_negatives must be >= 1, got {self.mask_span}, "
                             f"{self.num_negatives}")
        require_positive(self, ("logit_temperature", "gumbel_start", "gumbel_end"))
        if self.diversity_weight < 0 or self.feature_penalty_weight < 0:
            raise ValueError("diversity_weight and feature_penalty_weight must be >= 0")


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run: objective, steps, optimisation (``fit``'s learning rate, warm-up,
    clipping, device, seed; its early-stopping fields are not used) and failure guards."""

    objective: Wav2VecObjective = field(default_factory=Wav2VecObjective)
    steps_per_epoch: int = 50
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=10, learning_rate=5e-4,
                                                             grad_clip_norm=5.0))
    max_nonfinite_steps: int = 10    # skipped non-finite steps tolerated before an error
    collapse_perplexity: float = 1.5  # warn when the hard code perplexity per group drops below

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.max_nonfinite_steps < 0:
            raise ValueError(f"max_nonfinite_steps must be >= 0, got {self.max_nonfinite_steps}")
        if self.fit.grad_clip_norm is None:
            raise ValueError("fit.grad_clip_norm must be set: wav2vec pretraining needs gradient "
                             "clipping against loss spikes")


def wav2vec_losses(model: Wav2Vec2, x: torch.Tensor, *, objective: Wav2VecObjective,
                   temperature: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Total loss ``L_m + alpha L_d + beta * feature penalty`` and its parts for one batch
    ``x`` ``[B, C, L]`` (all float32 scalars)."""
    out = model(x, mask_prob=objective.mask_prob, mask_span=objective.mask_span,
                temperature=temperature, generator=generator)
    negatives = sample_distractors(out["mask"], num_negatives=objective.num_negatives,
                                   generator=generator)
    if objective.cross_sample_negatives:
        negatives = torch.cat([negatives, sample_cross_distractors(
            len(negatives), num_negatives=objective.cross_sample_negatives, generator=generator,
            device=negatives.device)], dim=1)
    contrastive, accuracy = wav2vec_contrastive_loss(
        out["context"], out["quantized"], negatives, temperature=objective.logit_temperature)
    diversity = diversity_loss(out["probs"])
    loss = (contrastive + objective.diversity_weight * diversity
            + objective.feature_penalty_weight * out["feature_penalty"])
    groups = out["probs"].shape[0]
    return {"loss": loss, "contrastive": contrastive.detach(), "diversity": diversity.detach(),
            "feature_penalty": out["feature_penalty"].detach(), "accuracy": accuracy,
            "prob_perplexity": out["prob_perplexity"].detach() / groups,
            "code_perplexity": out["code_perplexity"] / groups}


LOGGED = ("loss", "contrastive", "diversity", "feature_penalty", "accuracy", "prob_perplexity",
          "code_perplexity")


def pretrain_wav2vec(model: Wav2Vec2, *, batches: Callable[[int, torch.Generator], Iterable[torch.Tensor]],
                     config: PretrainConfig,
                     validate: Callable[[Wav2Vec2], dict[str, float]] | None = None,
                     name: str = "wav2vec") -> tuple[Wav2Vec2, dict[str, list[float]]]:
    """Pretrain ``model`` in place.

    Args:
        batches: ``(epoch, generator) -> iterable of [B, C, L]`` raw signal batches
            (``steps_per_epoch`` of them; fewer is allowed).
        config: see :class:`PretrainConfig`.
        validate: ``model -> {name: value}`` after each epoch (eval mode, no grad).

    Returns:
        the model (eval mode) and its per-epoch history: the means of :data:`LOGGED` over the
        epoch's steps (perplexities per codebook group: 1 = collapsed, ``entries`` = uniform),
        ``temperature`` (Gumbel, at the epoch's end), ``lr``, ``nonfinite_steps`` and the
        ``validate`` values (prefixed ``val_``).

    Raises:
        FloatingPointError: after more than ``max_nonfinite_steps`` steps with a non-finite
            loss or gradient (each is skipped: no parameter update).
    """
    fit = config.fit
    device = resolve_device(fit.device)
    generator = torch.Generator().manual_seed(fit.seed)
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=fit.learning_rate,
                                  weight_decay=fit.weight_decay)
    use_autocast = fit.amp and device.type == "cuda"
    total_steps = fit.epochs * config.steps_per_epoch
    history: dict[str, list[float]] = {}
    step, nonfinite = 0, 0
    for epoch in range(fit.epochs):
        lr = fit.learning_rate * learning_rate_factor(epoch, epochs=fit.epochs,
                                                      warmup_epochs=fit.warmup_epochs,
                                                      cosine=fit.cosine_schedule)
        for group in optimiser.param_groups:
            group["lr"] = lr
        model.train()
        sums = dict.fromkeys(LOGGED, 0.0)
        count, skipped, temperature = 0, 0, config.objective.gumbel_start
        progress = tqdm(batches(epoch, generator), desc=f"{name} epoch {epoch + 1}/{fit.epochs}",
                        leave=False, disable=not fit.progress, unit="batch")
        for x in progress:
            (x,) = to_device((x,), device)
            temperature = gumbel_temperature(step, total_steps=total_steps,
                                             start=config.objective.gumbel_start,
                                             end=config.objective.gumbel_end)
            step += 1
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
                parts = wav2vec_losses(model, x, objective=config.objective,
                                       temperature=temperature, generator=generator)
            optimiser.zero_grad(set_to_none=True)
            finite = bool(torch.isfinite(parts["loss"]))
            if finite:
                parts["loss"].backward()
                norm = nn.utils.clip_grad_norm_(model.parameters(), fit.grad_clip_norm)
                finite = bool(torch.isfinite(norm))
            if not finite:  # a NaN/inf spike: skip the update, count it, give up if it persists
                optimiser.zero_grad(set_to_none=True)
                skipped += 1
                nonfinite += 1
                logger.warning("%s: non-finite loss or gradient at epoch %d step %d, skipped "
                               "(%d so far)", name, epoch + 1, step, nonfinite)
                if nonfinite > config.max_nonfinite_steps:
                    raise FloatingPointError(
                        f"{name}: {nonfinite} steps with a non-finite loss or gradient (more than "
                        f"max_nonfinite_steps={config.max_nonfinite_steps}); lower the learning "
                        "rate, raise gumbel_end or check the input signals for NaN/inf")
                continue
            optimiser.step()
            for key in LOGGED:
                sums[key] += float(parts[key].detach())
            count += 1
            progress.set_postfix(loss=f"{sums['loss'] / count:.4f}")
        if count == 0:
            raise ValueError(f"{name}: no finite training step in epoch {epoch + 1}")
        for key in LOGGED:
            history.setdefault(key, []).append(sums[key] / count)
        history.setdefault("temperature", []).append(temperature)
        history.setdefault("lr", []).append(lr)
        history.setdefault("nonfinite_steps", []).append(float(skipped))
        if validate is not None:
            model.eval()
            with torch.no_grad():
                for key, value in validate(model).items():
                    key = key if key.startswith("val_") else f"val_{key}"
                    history.setdefault(key, []).append(float(value))
        code_ppl = history["code_perplexity"][-1]
        if code_ppl < config.collapse_perplexity:
            logger.warning("%s epoch %d: codebook collapse suspected (code perplexity %.2f per "
                           "group of %d entries); raise diversity_weight or gumbel_start",
                           name, epoch + 1, code_ppl, model.quantizer.entries)
        logger.info("%s epoch %d/%d %s", name, epoch + 1, fit.epochs,
                    " ".join(f"{k}={v[-1]:.4g}" for k, v in history.items()))
    return model.eval(), history


@torch.no_grad()
def evaluate_wav2vec(model: Wav2Vec2, batches: Iterable[torch.Tensor], *,
                     objective: Wav2VecObjective, seed: int) -> dict[str, float]:
    """Mean losses and monitors over ``batches`` in eval mode (hard argmax codes), with masks
    and distractors drawn from a fresh generator seeded ``seed`` (the same every call, so
    epochs compare)."""
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums, count = dict.fromkeys(LOGGED, 0.0), 0
    for x in batches:
        parts = wav2vec_losses(model, x.to(device), objective=objective,
                               temperature=objective.gumbel_end, generator=generator)
        for key in LOGGED:
            sums[key] += float(parts[key].detach())
        count += 1
    model.train(was_training)
    if count == 0:
        raise ValueError("no validation batch")
    return {key: value / count for key, value in sums.items() if math.isfinite(value)}
