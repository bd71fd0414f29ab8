"""wav2vec 2.0 losses, quantiser and span mask against Hugging Face ``transformers``' Wav2Vec2.

The reference is ``transformers.models.wav2vec2.modeling_wav2vec2``: the contrastive logits of
``Wav2Vec2ForPreTraining.compute_contrastive_logits`` with the masking of distractors identical
to the positive and the cross-entropy of ``Wav2Vec2ForPreTraining.forward`` (a *sum* over the
masked steps, where ours is the mean), the diversity loss ``(G V - perplexity) / G V`` with the
perplexity of ``Wav2Vec2GumbelVectorQuantizer._compute_perplexity`` (``forward`` multiplies it by
the number of masked steps), the quantiser's eval-mode (argmax) codewords, and the span-mask
statistics of ``_compute_mask_indices``. Nothing here downloads: models are built from a config.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastive_signals.losses.wav2vec import (
    contrastive_logits,
    diversity_loss,
    perplexity,
    sample_distractors,
    wav2vec_contrastive_loss,
)
from contrastive_signals.models.wav2vec import GumbelQuantizer, span_mask

transformers = pytest.importorskip("transformers")
hf = pytest.importorskip("transformers.models.wav2vec2.modeling_wav2vec2")


@pytest.fixture
def numpy_seed():
    """transformers' mask and distractor samplers draw from numpy's global state: seed it for
    the test and put the caller's state back afterwards (the reference leaves no choice)."""
    state = np.random.get_state()  # noqa: NPY002
    yield np.random.seed
    np.random.set_state(state)  # noqa: NPY002


def to_hf_negatives(mask: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Our ``[M, K]`` indices into the masked steps -> transformers' ``[B, T, K]`` indices into
    the flattened ``B * T`` steps (unmasked steps point at their row's first step; their target
    is ignored)."""
    batch, frames = mask.shape
    flat = torch.nonzero(mask.flatten()).squeeze(1)               # [M] masked step -> b * T + t
    out = (torch.arange(batch) * frames)[:, None, None].expand(batch, frames, negatives.shape[1])
    out = out.clone()
    out[mask] = flat[negatives]
    return out


def from_hf_negatives(mask: torch.Tensor, sampled: torch.Tensor) -> torch.Tensor:
    """transformers' ``[B, T, K]`` flat indices -> our ``[M, K]`` indices into the masked steps."""
    position = torch.full((mask.numel(),), -1, dtype=torch.long)
    position[mask.flatten()] = torch.arange(int(mask.sum()))
    return position[sampled[mask].long()]


def hf_contrastive(context, quantized, mask, hf_negatives, temperature):
    """Steps 3-6 of ``Wav2Vec2ForPreTraining.forward`` on ``[B, T, D]`` tensors: the logits
    ``[B * T, 1 + K]`` (time-major, as there) and the summed cross-entropy over masked steps."""
    batch, frames, dim = quantized.shape
    negative = quantized.reshape(-1, dim)[hf_negatives.long().view(-1)]
    negative = negative.view(batch, frames, -1, dim).permute(2, 0, 1, 3)         # [K, B, T, D]
    logits = hf.Wav2Vec2ForPreTraining.compute_contrastive_logits(
        quantized[None, :], negative, context, temperature)                       # [1+K, B, T]
    neg_is_pos = (quantized == negative).all(-1)
    if neg_is_pos.any():
        logits[1:][neg_is_pos] = float("-inf")
    logits = logits.transpose(0, 2).reshape(-1, logits.size(0))
    target = ((1 - mask.long()) * -100).transpose(0, 1).flatten()
    loss = F.cross_entropy(logits.float(), target, reduction="sum")
    return logits, loss


def masked_batch(seed, *, batch=3, frames=24, dim=16):
    """A span mask, context and quantised vectors ``[B, T, D]``; a few quantised vectors
    copy another masked step's of the same row (a reused codeword)."""
    g = torch.Generator().manual_seed(seed)
    mask = span_mask(batch, frames, mask_prob=0.5, span=3, generator=g)
    context = torch.randn(batch, frames, dim, generator=g)
    quantized = torch.randn(batch, frames, dim, generator=g)
    for row in range(batch):
        steps = torch.nonzero(mask[row]).squeeze(1)
        quantized[row, steps[1::3]] = quantized[row, steps[0]].clone()
    return mask, context, quantized


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_contrastive_logits_and_loss_match_transformers(seed, temperature):
    mask, context, quantized = masked_batch(seed)
    negatives = sample_distractors(mask, num_negatives=10,
                                   generator=torch.Generator().manual_seed(seed + 100))
    ours = contrastive_logits(context[mask], quantized[mask], negatives, temperature=temperature)
    loss, _ = wav2vec_contrastive_loss(context[mask], quantized[mask], negatives,
                                       temperature=temperature)

    theirs, their_sum = hf_contrastive(context, quantized, mask, to_hf_negatives(mask, negatives),
                                       temperature)
    # their rows are time-major (t * B + b); pick the masked ones in our row-major order
    batch, frames = mask.shape
    order = (torch.arange(frames)[None, :] * batch + torch.arange(batch)[:, None])[mask]
    theirs = theirs[order]
    masked_out = torch.isinf(theirs)
    assert masked_out.any(), "the batch should exercise the identical-distractor masking"
    assert torch.equal(torch.isinf(ours), masked_out)
    torch.testing.assert_close(ours[~masked_out], theirs[~masked_out], rtol=1e-5, atol=1e-5)
    # theirs is the sum over masked steps, ours the mean
    assert loss.item() == pytest.approx(their_sum.item() / int(mask.sum()), rel=1e-5, abs=1e-6)


def test_contrastive_loss_on_transformers_distractors(numpy_seed):
    """The other way round: distractors drawn by transformers' ``_sample_negative_indices``,
    mapped into our indexing."""
    numpy_seed(0)
    mask, context, quantized = masked_batch(3)
    sampled = torch.from_numpy(hf._sample_negative_indices(tuple(mask.shape), 7, mask.numpy()))
    negatives = from_hf_negatives(mask, sampled)
    assert (negatives >= 0).all()
    loss, _ = wav2vec_contrastive_loss(context[mask], quantized[mask], negatives, temperature=0.1)
    _, their_sum = hf_contrastive(context, quantized, mask, sampled, 0.1)
    assert loss.item() == pytest.approx(their_sum.item() / int(mask.sum()), rel=1e-5, abs=1e-6)


def test_distractor_sampling_matches_transformers_distribution(numpy_seed):
    """Both draw uniformly, with replacement, from the other masked steps of the same row."""
    numpy_seed(1)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[0, [0, 1, 2, 7, 8]] = True
    mask[1, 3:6] = True
    draws = 4000
    ours = sample_distractors(mask, num_negatives=draws, generator=torch.Generator().manual_seed(1))
    theirs = from_hf_negatives(mask, torch.from_numpy(
        hf._sample_negative_indices(tuple(mask.shape), draws, mask.numpy())))
    total = int(mask.sum())
    count_ours = torch.stack([torch.bincount(r, minlength=total) for r in ours]).float() / draws
    count_theirs = torch.stack([torch.bincount(r, minlength=total) for r in theirs]).float() / draws
    assert torch.equal(count_ours > 0, count_theirs > 0)           # same support
    # each share is 1/4 or 1/2; 4000 draws give a standard error below 0.008
    torch.testing.assert_close(count_ours, count_theirs, rtol=0, atol=0.04)


def test_transformers_pretraining_forward_losses():
    """A tiny ``Wav2Vec2ForPreTraining`` (random weights, eval mode, argmax codewords; a small
    codebook so distractors often repeat the positive): its ``contrastive_loss`` and
    ``diversity_loss`` equal ours on its own context vectors, targets and codeword choices,
    times the number of masked steps."""
    torch.manual_seed(0)  # transformers initialises its weights from torch's global state
    config = transformers.Wav2Vec2Config(
        conv_dim=(16,), conv_kernel=(4,), conv_stride=(4,), hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2, num_codevector_groups=2, num_codevectors_per_group=3,
        codevector_dim=8, proj_codevector_dim=8, contrastive_logits_temperature=0.1,
        num_negatives=6)
    model = hf.Wav2Vec2ForPreTraining(config).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 96, generator=g)
    mask = span_mask(3, 24, mask_prob=0.5, span=3, generator=g)
    negatives = sample_distractors(mask, num_negatives=6, generator=g)
    captured = {}
    handle = model.quantizer.weight_proj.register_forward_hook(
        lambda module, args, out: captured.setdefault("logits", out.detach()))
    try:
        with torch.no_grad():
            out = model(x, mask_time_indices=mask,
                        sampled_negative_indices=to_hf_negatives(mask, negatives))
    finally:
        handle.remove()
    masked = int(mask.sum())
    context, quantized = out.projected_states[mask], out.projected_quantized_states[mask]
    same = (quantized[negatives] == quantized[:, None]).all(-1)
    assert same.any(), "the tiny codebook should repeat codewords"
    loss, _ = wav2vec_contrastive_loss(context, quantized, negatives, temperature=0.1)
    assert loss.item() * masked == pytest.approx(out.contrastive_loss.item(), rel=1e-5)

    # eval mode: their perplexity is that of the hard (one-hot) codeword choices of the masked
    # steps, our diversity loss on the same batch-averaged one-hot choices
    codes = captured["logits"].view(*mask.shape, 2, 3).argmax(-1)[mask]         # [M, G]
    hard = F.one_hot(codes, 3).float().mean(0)                                   # [G, V]
    assert perplexity(hard).item() == pytest.approx(out.codevector_perplexity.item(), rel=1e-5)
    assert diversity_loss(hard).item() * masked == pytest.approx(out.diversity_loss.item(),
                                                                 rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("groups,entries", [(2, 8), (1, 5), (4, 16)])
@pytest.mark.parametrize("sharpness", [0.1, 1.0, 20.0])
def test_diversity_loss_matches_transformers_perplexity(groups, entries, sharpness):
    """Soft codeword probabilities ``[N, G, V]``, from nearly uniform to nearly one-hot; ours
    takes their average over the (masked) steps ``[G, V]``."""
    g = torch.Generator().manual_seed(groups * entries)
    probs = F.softmax(sharpness * torch.randn(30, groups, entries, generator=g), dim=-1)
    mask = torch.rand(5, 6, generator=g) < 0.5
    total = groups * entries
    quantizer = hf.Wav2Vec2GumbelVectorQuantizer
    for step_mask, mean in ((None, probs.mean(0)), (mask, probs[mask.flatten()].mean(0))):
        their_ppl = quantizer._compute_perplexity(probs, step_mask)
        assert perplexity(mean).item() == pytest.approx(their_ppl.item(), rel=1e-5)
        assert diversity_loss(mean).item() == pytest.approx(
            ((total - their_ppl) / total).item(), rel=1e-5, abs=1e-6)


def test_diversity_loss_at_collapse_matches_transformers():
    """Exact zeros: transformers uses ``xlogy`` (0 log 0 = 0), ours clamps the log."""
    probs = F.one_hot(torch.tensor([[0, 2], [0, 2], [0, 2]]), 4).float()        # [N, G, V]
    their_ppl = hf.Wav2Vec2GumbelVectorQuantizer._compute_perplexity(probs)
    assert perplexity(probs.mean(0)).item() == pytest.approx(their_ppl.item(), rel=1e-6)
    assert diversity_loss(probs.mean(0)).item() == pytest.approx(((8 - their_ppl) / 8).item(),
                                                                 abs=1e-6)


def test_quantizer_eval_codewords_match_transformers():
    """Eval mode (argmax, no Gumbel noise): same weights -> same concatenated codewords and the
    same perplexity of the hard choices (transformers' eval-mode perplexity)."""
    groups, entries, code_dim, in_dim = 2, 5, 8, 12
    torch.manual_seed(0)
    ours = GumbelQuantizer(in_dim, groups=groups, entries=entries, code_dim=code_dim).eval()
    config = transformers.Wav2Vec2Config(conv_dim=(in_dim,), conv_kernel=(1,), conv_stride=(1,),
                                         num_codevector_groups=groups,
                                         num_codevectors_per_group=entries,
                                         codevector_dim=code_dim)
    theirs = hf.Wav2Vec2GumbelVectorQuantizer(config).eval()
    with torch.no_grad():
        theirs.weight_proj.weight.copy_(ours.logits.weight)
        theirs.weight_proj.bias.copy_(ours.logits.bias)
        theirs.codevectors.copy_(ours.codebook.reshape(1, groups * entries, -1))
    z = torch.randn(2, 9, in_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = ours(z.flatten(0, 1), temperature=1.0)
        codevectors, their_ppl = theirs(z)
    torch.testing.assert_close(out["quantized"], codevectors.flatten(0, 1), rtol=1e-6, atol=1e-6)
    assert out["code_perplexity"].item() == pytest.approx(their_ppl.item(), rel=1e-5)


@pytest.mark.parametrize("frames,mask_prob,span", [(100, 0.3, 5), (50, 0.65, 3), (40, 0.65, 10),
                                                   (30, 0.05, 2)])
def test_span_mask_statistics_match_transformers(numpy_seed, frames, mask_prob, span):
    """Same definition: ``int(mask_prob * frames / span + u)`` spans (u ~ U[0, 1), at least
    ``min_spans``, at most ``frames - span + 1``) at distinct uniform start frames. transformers
    draws one ``u`` per call, ours one per row, so theirs is sampled a row per call; the
    masked share and the share of each frame must agree in distribution. (Left out: their
    extra cap ``frames // span`` spans, which only bites when ``mask_prob`` is close to 1.)"""
    numpy_seed(0)
    rows = 3000
    ours = span_mask(rows, frames, mask_prob=mask_prob, span=span,
                     generator=torch.Generator().manual_seed(0), min_spans=2).float()
    theirs = torch.from_numpy(np.concatenate([
        hf._compute_mask_indices((1, frames), mask_prob, span, min_masks=2)
        for _ in range(rows)])).float()
    # the masked share per row has a standard deviation below 0.15, so its mean over 3000 rows
    # a standard error below 0.003 (difference of two below 0.004)
    assert ours.mean().item() == pytest.approx(theirs.mean().item(), abs=0.015)
    # each frame's share (lower near the edges): standard error of the difference below 0.013
    torch.testing.assert_close(ours.mean(0), theirs.mean(0), rtol=0, atol=0.06)
    # the spread of the masked share across rows (span-count rounding and overlaps)
    assert ours.mean(1).std().item() == pytest.approx(theirs.mean(1).std().item(), abs=0.01)
