"""wav2vec 2.0 losses against a slow loop over the paper's formula and hand-worked values."""

import math

import pytest
import torch

from contrastive_signals.losses.wav2vec import (
    contrastive_logits,
    diversity_loss,
    perplexity,
    sample_cross_distractors,
    sample_distractors,
    wav2vec_contrastive_loss,
)


def loop_contrastive(context, quantized, negatives, temperature):
    """-log(exp(sim(c,q)/k) / sum over {q} + distinct distractors of exp(sim(c,q~)/k)), mean."""
    total = 0.0
    for t in range(len(context)):
        c = context[t].double()
        def sim(v, c=c):
            return float(torch.dot(c, v.double()) / (c.norm() * v.double().norm()))
        positive = math.exp(sim(quantized[t]) / temperature)
        denominator = positive
        for j in negatives[t].tolist():
            if torch.equal(quantized[j], quantized[t]):
                continue  # same codewords as the target: left out
            denominator += math.exp(sim(quantized[j]) / temperature)
        total += -math.log(positive / denominator)
    return total / len(context)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_contrastive_loss_matches_the_loop(seed, temperature):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(3, 12, generator=g) < 0.5
    mask[:, :2] = True
    context = torch.randn(int(mask.sum()), 8, generator=g)
    quantized = torch.randn(int(mask.sum()), 8, generator=g)
    quantized[3] = quantized[1]  # a repeated codeword: must leave the denominator
    negatives = sample_distractors(mask, num_negatives=4, generator=g)
    loss, accuracy = wav2vec_contrastive_loss(context, quantized, negatives, temperature=temperature)
    assert loss.item() == pytest.approx(loop_contrastive(context, quantized, negatives, temperature),
                                        rel=1e-5)
    assert 0.0 <= accuracy.item() <= 1.0


def test_contrastive_loss_hand_value():
    # c = (1, 0); target q = (1, 0): cos 1; distractors (0, 1): cos 0 and (-1, 0): cos -1.
    context = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    quantized = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    negatives = torch.tensor([[1, 2], [0, 2], [0, 1]])
    loss, accuracy = wav2vec_contrastive_loss(context, quantized, negatives, temperature=0.5)
    # row 0: -log(e^2 / (e^2 + e^0 + e^-2)); row 1 (q=(0,1), cos 0): -log(1 / (1 + e^2 + e^-2));
    # row 2 (q=(-1,0), cos -1): -log(e^-2 / (e^-2 + e^2 + 1))
    e = math.e
    rows = [-math.log(e**2 / (e**2 + 1 + e**-2)), -math.log(1 / (1 + e**2 + e**-2)),
            -math.log(e**-2 / (e**-2 + e**2 + 1))]
    assert loss.item() == pytest.approx(sum(rows) / 3, rel=1e-6)
    assert accuracy.item() == pytest.approx(1 / 3)


def test_distractors_stay_in_their_sequence_and_skip_themselves():
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(4, 20, dtype=torch.bool)
    mask[0, [1, 5]] = True
    mask[1, 2:12] = True
    mask[3, ::2] = True            # row 2 has no mask at all
    negatives = sample_distractors(mask, num_negatives=50, generator=g)
    rows = torch.nonzero(mask)[:, 0]
    assert negatives.shape == (int(mask.sum()), 50)
    for i in range(len(negatives)):
        assert i not in negatives[i].tolist()
        assert (rows[negatives[i]] == rows[i]).all()
    assert negatives[0].tolist() == [1] * 50 and negatives[1].tolist() == [0] * 50
    again = sample_distractors(mask, num_negatives=50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(negatives, again)


def test_cross_distractors_skip_themselves():
    negatives = sample_cross_distractors(5, num_negatives=40, generator=torch.Generator().manual_seed(1))
    assert negatives.shape == (5, 40) and int(negatives.max()) <= 4
    for i in range(5):
        assert i not in negatives[i].tolist()


def test_distractor_and_logit_errors():
    g = torch.Generator().manual_seed(0)
    single = torch.zeros(2, 5, dtype=torch.bool)
    single[0, 1] = True
    with pytest.raises(ValueError, match=">= 2 masked steps"):
        sample_distractors(single, num_negatives=3, generator=g)
    with pytest.raises(ValueError, match="num_negatives"):
        sample_distractors(torch.ones(1, 4, dtype=torch.bool), num_negatives=0, generator=g)
    with pytest.raises(ValueError, match="temperature"):
        contrastive_logits(torch.ones(2, 3), torch.ones(2, 3), torch.zeros(2, 1, dtype=torch.long),
                           temperature=0.0)


def test_logits_are_float32_under_bf16_inputs():
    c = torch.randn(6, 4).bfloat16()
    q = torch.randn(6, 4).bfloat16()
    logits = contrastive_logits(c, q, torch.randint(0, 6, (6, 3)), temperature=0.1)
    assert logits.dtype == torch.float32


def test_diversity_loss_hand_values():
    uniform = torch.full((2, 4), 0.25)
    assert perplexity(uniform).item() == pytest.approx(8.0)
    assert diversity_loss(uniform).item() == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    assert diversity_loss(collapsed).item() == pytest.approx((8 - 2) / 8, abs=1e-5)
    # one group uniform over 2 of 4 entries: exp(H) = 2; loss (4 - 2) / 4
    assert diversity_loss(torch.tensor([[0.5, 0.5, 0, 0]])).item() == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match=r"\[G, V\]"):
        diversity_loss(torch.ones(4))
