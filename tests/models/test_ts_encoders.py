"""Time-series encoders (built through the one registry): shapes, padding handled by the
mask, bundles, pooling."""

import pytest
import torch

from contrastive_signals.models.registry import build_model, from_bundle, list_encoders, to_bundle
from contrastive_signals.models.ts_encoders import (
    RecurrentTSEncoder,
    encode_instances,
    encode_splits,
    max_pool_time,
    sinusoidal_positions,
)

CONFIGS = {
    "cnn1d": {"output_dim": 12, "hidden_dim": 8, "layers": 2},
    "dilated_conv": {"output_dim": 12, "hidden_dim": 8, "depth": 3},
    "transformer": {"output_dim": 12, "hidden_dim": 8, "layers": 1, "heads": 2},
    "gru": {"output_dim": 12, "hidden_dim": 8},
    "lstm": {"output_dim": 12, "hidden_dim": 8},
}


def build_ts_encoder(arch, in_channels, config, *, seed):
    return build_model(arch, {"in_channels": in_channels, **config}, seed=seed)


def test_the_ts_encoders_are_registered_as_per_step_series_encoders():
    assert set(CONFIGS) <= set(list_encoders("series", "per_step"))


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
    restored = from_bundle(to_bundle(a, arch, {"in_channels": 2, **CONFIGS[arch]}),
                           modality="series")
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
    with pytest.raises(ValueError, match="unknown architecture 'wavenet'"):
        build_ts_encoder("wavenet", 1, {}, seed=0)
    model = build_ts_encoder("cnn1d", 2, CONFIGS["cnn1d"], seed=0)
    with pytest.raises(ValueError, match=r"\[B, T, 2\]"):
        model(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="mask"):
        model(torch.zeros(2, 5, 2), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="cell"):
        RecurrentTSEncoder(1, cell="rnn")


def test_bundles_written_before_the_one_registry_still_load():
    model = build_ts_encoder("gru", 2, CONFIGS["gru"], seed=1)
    old = {"architecture": "gru", "in_channels": 2, "config": CONFIGS["gru"],
           "state_dict": model.state_dict()}
    x = torch.randn(2, 5, 2)
    assert torch.equal(from_bundle(old)(x), model.eval()(x))


def test_encode_splits_pools_as_asked():
    model = build_ts_encoder("cnn1d", 1, CONFIGS["cnn1d"], seed=0).eval()
    x = torch.randn(3, 8, 1)
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[0, 5:] = False
    data = {"x_train": x, "mask_train": mask, "x_test": x[:2]}
    observed, unmasked = encode_splits(model, data)
    assert observed.shape == (3, 12) and unmasked.shape == (2, 12)
    assert torch.equal(observed, encode_instances(model, x, mask))
    (window,) = encode_splits(model, data, ("train",), pooling="padded_window")
    assert torch.equal(window, encode_instances(model, x, mask, pool_padding=True))
    assert torch.equal(unmasked, encode_instances(model, x[:2], torch.ones(2, 8, dtype=torch.bool)))
    with pytest.raises(ValueError, match="pooling must be one of"):
        encode_splits(model, data, pooling="mean")


def test_dilated_conv_wide_grouped_final_block():
    """``final_mid`` / ``final_groups`` change only the final block: its first conv maps to
    ``final_mid`` channels, its second splits into groups, so output channel ``k`` of group
    ``g`` depends on that group's ``final_mid / final_groups`` mid channels alone."""
    config = {"output_dim": 12, "hidden_dim": 8, "depth": 2, "final_mid": 6, "final_groups": 3}
    model = build_ts_encoder("dilated_conv", 2, config, seed=0).eval()
    last = model.blocks[-1]
    assert last.conv1.conv.weight.shape == (6, 8, 3)
    assert last.conv2.conv.weight.shape == (12, 2, 3)  # 3 groups: 2 mid -> 4 out channels each
    assert model.blocks[0].conv2.conv.groups == 1  # the hidden blocks are TS2Vec's
    x = torch.randn(3, 11, 2)
    assert model(x).shape == (3, 11, 12)
    # Zeroing group 0's mid channels leaves groups 1 and 2 of the conv2 output unchanged.
    mid = torch.randn(3, 6, 11)
    cut = mid.clone()
    cut[:, :2] = 0
    full, part = last.conv2(mid), last.conv2(cut)
    assert torch.equal(full[:, 4:], part[:, 4:]) and not torch.allclose(full[:, :4], part[:, :4])
    # The defaults build the same parameters, in the same order, as before the options existed.
    plain = build_ts_encoder("dilated_conv", 2, CONFIGS["dilated_conv"], seed=5)
    named = build_ts_encoder("dilated_conv", 2, {**CONFIGS["dilated_conv"], "final_groups": 1,
                                                 "final_mid": None}, seed=5)
    assert [(k, v.shape) for k, v in plain.state_dict().items()] == \
        [(k, v.shape) for k, v in named.state_dict().items()]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                named.state_dict().values(), strict=True))


@pytest.mark.parametrize("bad", [{"final_groups": 0}, {"final_groups": 5},
                                 {"final_groups": 4, "final_mid": 6}])
def test_dilated_conv_bad_final_groups_name_the_parameter(bad):
    with pytest.raises(ValueError, match="final_groups"):
        build_ts_encoder("dilated_conv", 1, {"output_dim": 12, "hidden_dim": 8, "depth": 1,
                                             **bad}, seed=0)
