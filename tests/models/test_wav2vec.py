"""wav2vec model pieces: span mask, temperature schedule, quantiser, and the network's
forward shapes around either registered feature encoder (the training recipe is tested in
tests/methods/test_wav2vec.py)."""

import pytest
import torch

from contrastive_signals.models.registry import build_model
from contrastive_signals.models.wav2vec import (
    GumbelQuantizer,
    Wav2Vec2,
    gumbel_temperature,
    span_mask,
)

# Tiny models: one torch thread (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = {"model_dim": 16, "ff_dim": 32, "codebook_entries": 8, "code_dim": 16, "final_dim": 16,
         "layers": 1}


def test_span_mask_spans_share_and_reproducibility():
    mask = span_mask(64, 100, mask_prob=0.3, span=5, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (64, 100) and mask.dtype == torch.bool
    assert (mask.sum(1) >= 2).all()
    share = mask.float().mean().item()
    assert 0.15 < share < 0.3            # 6 spans of 5 per row, minus overlaps
    again = span_mask(64, 100, mask_prob=0.3, span=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    # masked frames come in runs of at least `span`
    row = mask[0].int()
    edges = torch.nonzero(torch.diff(torch.cat([torch.zeros(1, dtype=torch.int), row,
                                                torch.zeros(1, dtype=torch.int)]))).flatten()
    assert ((edges[1::2] - edges[::2]) >= 5).all()


def test_span_mask_errors():
    g = torch.Generator()
    with pytest.raises(ValueError, match="mask_prob"):
        span_mask(1, 10, mask_prob=0.0, span=2, generator=g)
    with pytest.raises(ValueError, match="too few"):
        span_mask(1, 3, mask_prob=0.5, span=3, generator=g)


def test_gumbel_temperature_anneals_from_start_to_end():
    values = [gumbel_temperature(s, total_steps=11, start=2.0, end=0.5) for s in range(11)]
    assert values[0] == pytest.approx(2.0) and values[-1] == pytest.approx(0.5)
    assert values[5] == pytest.approx(1.0)        # geometric: sqrt(2 * 0.5)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_quantizer_hard_choices_straight_through_and_eval_argmax():
    quantizer = GumbelQuantizer(6, groups=2, entries=4, code_dim=8)
    z = torch.randn(10, 6, requires_grad=True)
    out = quantizer(z, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert out["quantized"].shape == (10, 8) and out["codes"].shape == (10, 2)
    expected = torch.cat([quantizer.codebook[g, out["codes"][:, g]] for g in range(2)], dim=1)
    assert torch.allclose(out["quantized"], expected, atol=1e-6)
    out["quantized"].sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0       # gradient through the soft path
    assert 1.0 <= out["code_perplexity"].item() <= 8.0
    quantizer.eval()
    out = quantizer(z, temperature=1.0)
    assert torch.equal(out["codes"], quantizer.logits(z).view(10, 2, 4).argmax(-1))
    quantizer.train()
    with pytest.raises(ValueError, match="generator"):
        quantizer(z, temperature=1.0)


@pytest.mark.parametrize("architecture,config,length,frames", [
    ("w2v_conv", {"layers": [[8, 10, 5], [8, 3, 2], [8, 3, 2]]}, 1600, 79),
    ("sleep_cnn", {"base_channels": 4}, 6000, 31),
])
def test_forward_shapes(architecture, config, length, frames):
    encoder = build_model(architecture, {"in_channels": 3, **config}, seed=0)
    model = Wav2Vec2(encoder, 8, **SMALL)
    assert model.feature_encoder is encoder
    x = torch.randn(2, 3, length)
    out = model(x, mask_prob=0.5, mask_span=2, temperature=1.0,
                generator=torch.Generator().manual_seed(0))
    assert out["mask"].shape == (2, frames)
    masked = int(out["mask"].sum())
    assert out["context"].shape == out["quantized"].shape == (masked, 16)
    assert out["probs"].shape == (2, 8)
    assert out["feature_penalty"].ndim == 0
