"""wav2vec 2.0 pretraining losses (Baevski et al., 2020, section 3.3), on embeddings only.

- Contrastive loss: for every masked time step ``t`` the context vector ``c_t`` must pick
  its quantised latent ``q_t`` out of ``{q_t} + K distractors`` drawn from other masked time
  steps of the same sequence::

      L_m = -log( exp(sim(c_t, q_t) / kappa) / sum_{q~ in Q_t} exp(sim(c_t, q~) / kappa) )

  with ``sim`` the cosine similarity. Distractors identical to ``q_t`` (the same codewords)
  are left out of the denominator, as in fairseq. The logits are computed in float32 so
  bf16 autocast cannot overflow them.
- Diversity loss: with ``p_g`` the soft codeword distribution of group ``g`` averaged over
  the batch, ``L_d = (G V - sum_g exp(H(p_g))) / (G V)``: 0 when every codeword is used
  equally, close to 1 when the codebook collapses to one entry per group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is of a lower precision (bf16 autocast), else unchanged (float64
    stays float64, so exactness checks can run in it)."""
    return t.float() if torch.finfo(t.dtype).bits < 32 else t


def sample_distractors(mask: torch.Tensor, *, num_negatives: int, generator: torch.Generator
                       ) -> torch.Tensor:
    """Distractor indices for every masked time step, drawn uniformly (with replacement) from
    the *other* masked steps of the same sequence.

    Args:
        mask: ``[B, T]`` bool, at least 2 masked steps in each row with any.
        num_negatives: K.
        generator: the only source of randomness.

    Returns:
        ``[M, K]`` int64 indices into the masked steps taken in row-major order
        (``M = mask.sum()``, the order of ``x[mask]``); row ``i`` never contains ``i`` and only
        indices of its own sequence.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be [B, T], got shape {tuple(mask.shape)}")
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
    counts = mask.sum(1).cpu()                                      # [B]
    if bool(((counts == 1)).any()):
        raise ValueError("every masked sequence needs >= 2 masked steps to draw distractors from")
    total = int(counts.sum())
    row = torch.repeat_interleave(torch.arange(len(counts)), counts)   # [M]
    offsets = counts.cumsum(0) - counts                               # [B]
    local = torch.arange(total) - offsets[row]                        # position within the row
    others = (counts[row] - 1).unsqueeze(1)                           # [M, 1]
    draw = (torch.rand(total, num_negatives, generator=generator) * others).long()
    draw = torch.minimum(draw, others - 1)                            # guard float rounding
    draw = draw + (draw >= local.unsqueeze(1)).long()                 # skip the step itself
    return (offsets[row].unsqueeze(1) + draw).to(mask.device)


def sample_cross_distractors(total: int, *, num_negatives: int, generator: torch.Generator,
                             device: torch.device | str = "cpu") -> torch.Tensor:
    """fairseq's ``cross_sample_negatives``: distractors drawn uniformly (with replacement) from
    all ``total`` masked steps of the batch, any sequence, never the step itself.

    Returns:
        ``[total, num_negatives]`` int64 indices in ``[0, total)``, row ``i`` without ``i``.
    """
    if total < 2:
        raise ValueError(f"need >= 2 masked steps to draw distractors from, got {total}")
    draw = torch.randint(total - 1, (total, num_negatives), generator=generator)
    draw = draw + (draw >= torch.arange(total).unsqueeze(1)).long()
    return draw.to(device)


def contrastive_logits(context: torch.Tensor, quantized: torch.Tensor, negatives: torch.Tensor,
                       *, temperature: float) -> torch.Tensor:
    """Cosine-similarity logits ``[M, 1 + K]``, column 0 the true latent.

    Args:
        context: ``[M, D]`` context vectors of the masked steps.
        quantized: ``[M, D]`` their quantised latents (targets).
        negatives: ``[M, K]`` indices into ``quantized`` (see :func:`sample_distractors`).
        temperature: kappa.

    Distractors equal to the target get ``-inf`` (they are the same codewords, not a
    different latent).
    """
    if context.shape != quantized.shape or context.dim() != 2:
        raise ValueError(f"context and quantized must both be [M, D], got {tuple(context.shape)} "
                         f"and {tuple(quantized.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    context, quantized = at_least_float32(context), at_least_float32(quantized)
    candidates = torch.cat([quantized.unsqueeze(1), quantized[negatives]], dim=1)  # [M, 1+K, D]
    logits = F.cosine_similarity(context.unsqueeze(1), candidates, dim=-1, eps=1e-6) / temperature
    same = (quantized[negatives] == quantized.unsqueeze(1)).all(-1)               # [M, K]
    return torch.cat([logits[:, :1], logits[:, 1:].masked_fill(same, float("-inf"))], dim=1)


def wav2vec_contrastive_loss(context: torch.Tensor, quantized: torch.Tensor,
                             negatives: torch.Tensor, *, temperature: float = 0.1
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``L_m`` averaged over the masked steps, and the share of steps whose true latent has
    the highest logit (the contrastive accuracy, a collapse monitor).

    Shapes as in :func:`contrastive_logits`; returns two scalars.
    """
    logits = contrastive_logits(context, quantized, negatives, temperature=temperature)
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, target)
    accuracy = (logits.argmax(1) == 0).float().mean() if len(logits) else logits.new_zeros(())
    return loss, accuracy.detach()


def perplexities(probs: torch.Tensor) -> torch.Tensor:
    """``exp(H(p_g))`` ``[G]`` of each row of ``probs`` ``[G, V]`` (a distribution over V
    entries): between 1 (one entry used) and V (uniform use)."""
    entropy = -(probs * torch.log(probs.clamp_min(1e-7))).sum(-1)
    return torch.exp(entropy)


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """``sum_g exp(H(p_g))`` of ``probs`` ``[G, V]`` (each row a distribution over V codewords):
    between G (collapse) and G V (uniform use)."""
    return perplexities(probs).sum()


def diversity_loss(probs: torch.Tensor) -> torch.Tensor:
    """``L_d = (G V - perplexity(probs)) / (G V)`` for batch-averaged soft codeword
    probabilities ``probs`` ``[G, V]``; a scalar in ``[0, 1 - 1/V]``."""
    if probs.dim() != 2:
        raise ValueError(f"probs must be [G, V], got shape {tuple(probs.shape)}")
    total = probs.shape[0] * probs.shape[1]
    return (total - perplexity(at_least_float32(probs))) / total
