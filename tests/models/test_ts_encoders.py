"""Time-series encoders: shapes, padding handled by the mask, bundles, pooling."""

import pytest
import torch

from contrastive_signals.models.ts_encoders import (
    ARCHITECTURES,
    RecurrentTSEncoder,
    build_ts_encoder,
    encode_instances,
    max_pool_time,
    sinusoidal_positions,
    ts_encoder_bundle,
    ts_encoder_from_bundle,
)

CONFIGS = {
    "cnn1d": {"output_dim": 12, "hidden_dim": 8, "layers": 2},
    "dilated_conv": {"output_dim": 12, "hidden_dim": 8, "depth": 3},
    "transformer": {"output_dim": 12, "hidden_dim": 8, "layers": 1, "heads": 2},
    "gru": {"output_dim": 12, "hidden_dim": 8},
    "lstm": {"output_dim": 12, "hidden_dim": 8},
}


def test_every_architecture_is_covered():
    assert set(CONFIGS) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", CONFIGS)
def test_shapes_and_padding_ignored(arch):
    model = build_ts_encoder(arch, 3, CONFIGS[arch], seed=0).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, 3, generator=g)
    mask = torch.ones(4, 16, dtype=torch.bool)
    mask[1, 10:] = False
    out = model(x, mask)
    assert out.shape == (4, 16, 12)
    # Whatever the padded steps hold (even NaN), the encoder sees zeros there.
    noisy = x.clone()
    noisy[1, 10:] = float("nan")
    clean = x.clone()
    clean[1, 10:] = 0.0
    assert torch.allclose(model(noisy, mask), model(clean, mask), atol=1e-5)
    pooled = encode_instances(model, noisy, mask, batch_size=3)
    assert pooled.shape == (4, 12) and torch.isfinite(pooled).all()


@pytest.mark.parametrize("arch", CONFIGS)
def test_same_seed_same_weights_and_bundle_round_trip(arch):
    a = build_ts_encoder(arch, 2, CONFIGS[arch], seed=7)
    b = build_ts_encoder(arch, 2, CONFIGS[arch], seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                b.state_dict().values(), strict=True))
    restored = ts_encoder_from_bundle(ts_encoder_bundle(a, arch, 2, CONFIGS[arch]))
    x = torch.randn(2, 9, 2)
    assert torch.allclose(restored(x), a.eval()(x))


def test_timestamp_masking_only_in_training_with_a_generator():
    model = build_ts_encoder("dilated_conv", 1, {"output_dim": 4, "hidden_dim": 4, "depth": 1,
                                                 "dropout": 0.0}, seed=0)
    x = torch.randn(2, 10, 1)
    model.train()
    plain = model(x)
    masked = model(x, None, torch.Generator().manual_seed(0))
    assert torch.allclose(plain, model.eval()(x))
    assert not torch.allclose(plain, masked)


def test_max_pool_time_ignores_padding():
    h = torch.tensor([[[1.0], [5.0], [9.0]]])
    assert max_pool_time(h, torch.tensor([[True, True, False]])).item() == 5.0
    assert max_pool_time(h).item() == 9.0


def test_sinusoidal_positions():
    table = sinusoidal_positions(5, 4)
    assert table.shape == (5, 4)
    assert torch.allclose(table[:, 0], torch.sin(torch.arange(5.0)))
    assert torch.allclose(table[:, 1], torch.cos(torch.arange(5.0)))
    assert torch.allclose(table[:, 3], torch.cos(torch.arange(5.0) / 100.0))


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown time-series encoder"):
        build_ts_encoder("wavenet", 1, {}, seed=0)
    model = build_ts_encoder("cnn1d", 2, CONFIGS["cnn1d"], seed=0)
    with pytest.raises(ValueError, match=r"\[B, T, 2\]"):
        model(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="mask"):
        model(torch.zeros(2, 5, 2), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="cell"):
        RecurrentTSEncoder(1, cell="rnn")
