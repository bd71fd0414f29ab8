"""The one registry: every architecture builds from its entry, declares its modality and
embedding size truthfully, round-trips through a bundle, and bad names fail clearly."""

import pytest
import torch

from contrastive_signals.models.registry import (
    ENCODERS,
    MODALITIES,
    EncoderSpec,
    build_model,
    build_model_with_rng_state,
    from_bundle,
    get_entry,
    list_encoders,
    to_bundle,
)

# Small configs and an input for each instance / per-step encoder.
INSTANCE_INPUTS = {
    "digit_cnn": ({"in_channels": 1, "embedding_dim": 12}, torch.randn(3, 1, 28, 28)),
    "triplet_mlp": ({"in_channels": 1, "embedding_dim": 5}, torch.randn(3, 1, 28, 28)),
    "supervised_cnn": ({"in_channels": 1, "channels": 2}, torch.randn(3, 1, 28, 28)),
    "curve_cnn": ({"in_channels": 2, "length": 64, "channels": (4, 4), "embedding_dim": 7},
                  torch.randn(3, 2, 64)),
}
SERIES = ["cnn1d", "dilated_conv", "transformer", "gru", "lstm"]


def test_every_entry_declares_a_known_modality_and_output():
    assert set(list_encoders()) == set(ENCODERS)
    for name, entry in ENCODERS.items():
        assert entry.name == name and entry.modality in MODALITIES and entry.summary
    assert set(list_encoders("series", "per_step")) >= set(SERIES)
    assert "digit_cnn" in list_encoders("image") and "digit_cnn" not in list_encoders("series")


@pytest.mark.parametrize("name", sorted(INSTANCE_INPUTS))
def test_instance_encoders_embed_to_their_declared_width(name):
    config, x = INSTANCE_INPUTS[name]
    model = build_model(name, config, seed=0).eval()
    entry = get_entry(name)
    z = model.embed(x) if hasattr(model, "embed") else model(x)
    assert z.shape == (3, entry.embedding_dim(config)) == (3, model.embedding_dim)


@pytest.mark.parametrize("name", SERIES)
def test_series_encoders_give_per_step_outputs_of_their_declared_width(name):
    config = {"in_channels": 2, "output_dim": 6, "hidden_dim": 8}
    if name == "dilated_conv":
        config["depth"] = 1
    model = build_model(name, config, seed=0).eval()
    out = model(torch.randn(3, 20, 2), torch.ones(3, 20, dtype=torch.bool))
    assert out.shape == (3, 20, 6) and get_entry(name).embedding_dim(config) == 6
    assert model.embedding_dim == 6


def test_unknown_or_wrong_modality_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown architecture 'resnet'.*'digit_cnn'"):
        get_entry("resnet")
    with pytest.raises(ValueError, match=r"for series data.*reads image data.*\['cnn1d'"):
        get_entry("digit_cnn", modality="series")


def test_build_is_seeded_and_leaves_global_state_alone():
    state = torch.get_rng_state()
    a, rng_after = build_model_with_rng_state("gru", {"in_channels": 1}, seed=3)
    b = build_model("gru", {"in_channels": 1}, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        get_entry("gru").factory(in_channels=1)
        assert torch.equal(torch.get_rng_state(), rng_after)


def test_bundles_round_trip_and_read_old_time_series_bundles():
    config = {"in_channels": 2, "output_dim": 4, "hidden_dim": 4, "depth": 1}
    model = build_model("dilated_conv", config, seed=1).eval()
    x = torch.randn(2, 10, 2)
    again = from_bundle(to_bundle(model, "dilated_conv", config))
    assert torch.equal(again(x), model(x))
    old = {"architecture": "dilated_conv", "in_channels": 2,
           "config": {k: v for k, v in config.items() if k != "in_channels"},
           "state_dict": model.state_dict()}
    assert torch.equal(from_bundle(old)(x), model(x))
    with pytest.raises(ValueError, match="for image data"):
        from_bundle(to_bundle(model, "dilated_conv", config), modality="image")
    with pytest.raises(ValueError, match="not a model bundle"):
        from_bundle({"state_dict": {}})


def test_encoder_spec_checks_its_config_before_building():
    spec = EncoderSpec("digit_cnn", {"embedding_dim": 8})
    model, config = spec.build(3, seed=0)
    assert config == {"in_channels": 3, "embedding_dim": 8} and model.embedding_dim == 8
    with pytest.raises(ValueError, match="unexpected keyword argument 'embeding_dim'"):
        EncoderSpec("digit_cnn", {"embeding_dim": 8})
    with pytest.raises(ValueError, match="taken from the data"):
        EncoderSpec("digit_cnn", {"in_channels": 3})
