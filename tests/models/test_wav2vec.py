"""wav2vec model pieces: span mask, quantiser, forward shapes, the pretraining loop and its
guards against NaN spikes, and loading the encoder into the sleep stager."""

import logging

import pytest
import torch

from contrastive_signals.models.sleep import SleepStager, load_encoder_features
from contrastive_signals.models.wav2vec import (
    GumbelQuantizer,
    PretrainConfig,
    Wav2Vec2,
    Wav2VecObjective,
    evaluate_wav2vec,
    gumbel_temperature,
    pretrain_wav2vec,
    span_mask,
)
from contrastive_signals.training.fit import FitConfig

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


@pytest.mark.parametrize("encoder,length,frames", [("conv", 1600, 79), ("sleep_cnn", 6000, 31)])
def test_forward_shapes(encoder, length, frames):
    model = Wav2Vec2(3, encoder=encoder, base_channels=4, conv_layers=[[8, 10, 5], [8, 3, 2],
                                                                          [8, 3, 2]], **SMALL)
    x = torch.randn(2, 3, length)
    out = model(x, mask_prob=0.5, mask_span=2, temperature=1.0,
                generator=torch.Generator().manual_seed(0))
    assert out["mask"].shape == (2, frames)
    masked = int(out["mask"].sum())
    assert out["context"].shape == out["quantized"].shape == (masked, 16)
    assert out["probs"].shape == (2, 8)


def batches_of(x, steps=3, batch=4):
    def batches(epoch, generator):
        for _ in range(steps):
            yield x[torch.randint(len(x), (batch,), generator=generator)]
    return batches


def config(epochs=2, **kwargs):
    fit = FitConfig(epochs=epochs, learning_rate=1e-3, grad_clip_norm=1.0, progress=False,
                    device="cpu")
    return PretrainConfig(objective=Wav2VecObjective(mask_prob=0.5, mask_span=2, num_negatives=4,
                                                     cross_sample_negatives=2),
                          steps_per_epoch=3, fit=fit, **kwargs)


def test_pretraining_history_and_reproducibility():
    x = torch.randn(12, 3, 800, generator=torch.Generator().manual_seed(0))

    def run():
        torch.manual_seed(0)
        model = Wav2Vec2(3, encoder="conv", **SMALL)
        return pretrain_wav2vec(model, batches=batches_of(x), config=config(),
                                validate=lambda m: evaluate_wav2vec(
                                    m, [x[:4]], objective=config().objective, seed=0))

    model, history = run()
    for key in ("loss", "contrastive", "diversity", "prob_perplexity", "code_perplexity",
                "accuracy", "temperature", "lr", "nonfinite_steps", "val_contrastive", "val_loss"):
        assert len(history[key]) == 2, key
    assert history["temperature"][-1] == pytest.approx(0.5)
    assert all(1.0 <= p <= 8.0 for p in history["code_perplexity"])
    assert history["nonfinite_steps"] == [0.0, 0.0]
    assert not model.training
    _, again = run()
    assert again == history


def test_non_finite_steps_are_skipped_then_stop_the_run(caplog):
    x = torch.randn(8, 3, 800)
    x[0] = float("nan")                      # one poisoned recording: some batches hit it

    model = Wav2Vec2(3, encoder="conv", **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING), pytest.raises(FloatingPointError, match="non-finite"):
        pretrain_wav2vec(model, batches=batches_of(x[:1], steps=3, batch=2),
                         config=config(max_nonfinite_steps=2))
    assert "skipped" in caplog.text
    # every step was non-finite: no parameter changed
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_pretrain_config_needs_clipping():
    with pytest.raises(ValueError, match="grad_clip_norm"):
        PretrainConfig(fit=FitConfig(epochs=1, learning_rate=1e-3))


def test_sleep_stager_takes_the_pretrained_encoder():
    model = Wav2Vec2(3, encoder="sleep_cnn", base_channels=4, **SMALL)
    stager = SleepStager(3, base_channels=4, embedding_dim=8, hidden_dim=8)
    load_encoder_features(stager, model.feature_encoder.state_dict())
    for key, value in model.feature_encoder.state_dict().items():
        assert torch.equal(stager.encoder.features.state_dict()[key], value)
    wrong = SleepStager(3, base_channels=8, embedding_dim=8, hidden_dim=8)
    with pytest.raises(ValueError, match="base_channels"):
        load_encoder_features(wrong, model.feature_encoder.state_dict())
