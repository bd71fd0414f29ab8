import pytest
import torch
from torch.distributions import Normal, kl_divergence

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.losses.elbo import derangement
from contrastive_signals.models.hvae import (
    Gaussian,
    HierarchicalVAE,
    HVAEModelParams,
    cross_swap_codes,
    latent_part_effects,
    own_decode,
    swap_decode,
    swap_donors,
    swap_noise,
    swap_panels,
)
from contrastive_signals.models.registry import build_model


def _model(seed: int = 0) -> HierarchicalVAE:
    torch.manual_seed(seed)
    return HierarchicalVAE(image_size=16, channels=(4, 8, 8), spatial_signal=3, spatial_noise=2,
                           global_signal=5, global_noise=4)


def test_forward_shapes_and_kl():
    model = _model()
    images = torch.rand(6, 1, 16, 16)
    out = model(images, torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == (6, 1, 16, 16)
    assert out.posteriors["spatial"].mean.shape == (6, 5, 4, 4)
    assert out.posteriors["global"].mean.shape == (6, 9)
    assert out.kl().shape == (6,) and torch.all(out.kl() >= 0)
    split = model.split(model.encode(images))
    assert split["spatial"][0].shape == (6, 3 * 16) and split["spatial"][1].shape == (6, 2 * 16)
    assert split["global"][0].shape == (6, 5) and split["global"][1].shape == (6, 4)


def test_sampling_is_seeded():
    model = _model()
    images = torch.rand(2, 1, 16, 16)
    a = model(images, torch.Generator().manual_seed(1)).reconstruction
    b = model(images, torch.Generator().manual_seed(1)).reconstruction
    c = model(images, torch.Generator().manual_seed(2)).reconstruction
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    q = Gaussian(torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g))
    p = Gaussian(torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g))
    tq = Normal(q.mean, (0.5 * q.log_var).exp())
    tp = Normal(p.mean, (0.5 * p.log_var).exp())
    torch.testing.assert_close(q.kl(p), kl_divergence(tq, tp).sum(1))
    torch.testing.assert_close(q.kl(), kl_divergence(tq, Normal(0.0, 1.0)).sum(1))
    # Hand value: KL(N(1, e^0) || N(0, 1)) = 0.5 * (1 + 1 - 1 - 0) = 0.5 per dimension.
    one = Gaussian(torch.ones(1, 2), torch.zeros(1, 2))
    torch.testing.assert_close(one.kl(), torch.tensor([1.0]))


def test_swap_takes_signal_from_codes_and_noise_from_donors():
    model = _model()
    codes = model.encode(torch.rand(2, 1, 16, 16))
    donors = model.encode(torch.rand(2, 1, 16, 16))
    mixed = swap_noise(model, codes, donors)
    torch.testing.assert_close(mixed["spatial"][:, :3], codes["spatial"][:, :3])
    torch.testing.assert_close(mixed["spatial"][:, 3:], donors["spatial"][:, 3:])
    torch.testing.assert_close(mixed["global"][:, :5], codes["global"][:, :5])
    torch.testing.assert_close(mixed["global"][:, 5:], donors["global"][:, 5:])


@pytest.mark.parametrize("batch", [2, 3, 7])
def test_cross_swap_gives_each_noisy_image_the_noise_of_another_clean_image(batch):
    model = _model()
    # row r of every level holds the value r: the source row of each part is readable
    codes = {"spatial": torch.arange(2 * batch, dtype=torch.float)[:, None, None, None]
             .expand(-1, 5, 8, 8),
             "global": torch.arange(2 * batch, dtype=torch.float)[:, None].expand(-1, 9)}
    for seed in range(10):
        donors = derangement(batch, torch.Generator().manual_seed(seed))
        mixed = cross_swap_codes(model, codes, batch + torch.arange(batch), donors)
        for level, n_signal in (("spatial", 3), ("global", 5)):
            signal = mixed[level][:, :n_signal].flatten(1)
            noise = mixed[level][:, n_signal:].flatten(1)
            assert signal.shape[0] == noise.shape[0] == batch
            assert (signal == (batch + torch.arange(batch))[:, None]).all()  # noisy_i's signal
            assert (noise == donors[:, None]).all()                          # clean donor
            assert (noise != torch.arange(batch)[:, None]).all()   # never its own clean version
        # injection: clean_i's signal with noisy_{donors[i]}'s noise
        mixed = cross_swap_codes(model, codes, torch.arange(batch), batch + donors)
        assert (mixed["global"][:, :5] == torch.arange(batch)[:, None]).all()
        assert (mixed["global"][:, 5:] == (batch + donors)[:, None]).all()
    with pytest.raises(ValueError, match="must be < 6"):
        cross_swap_codes(model, {"global": torch.zeros(6, 9)}, torch.tensor([1]), torch.tensor([6]))
    with pytest.raises(ValueError, match="equal length"):
        cross_swap_codes(model, {"global": torch.zeros(6, 9)}, torch.tensor([1]),
                         torch.tensor([2, 3]))


def test_latent_part_effects_are_differences_from_the_clean_decode():
    model = _model()
    clean, noisy = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    effects = latent_part_effects(model, clean, noisy)
    assert {k: tuple(v.shape) for k, v in effects.items()} == {
        "streaks": (3, 16, 16), "noise part": (3, 16, 16), "signal part": (3, 16, 16)}
    base = own_decode(model, clean)
    torch.testing.assert_close(effects["streaks"], (noisy - clean)[:, 0])
    torch.testing.assert_close(effects["noise part"] + base[:, 0],
                               swap_decode(model, clean, noisy)[:, 0])
    torch.testing.assert_close(effects["signal part"] + base[:, 0],
                               swap_decode(model, noisy, clean)[:, 0])
    # an image that is its own noisy version: neither part adds anything
    same = latent_part_effects(model, clean, clean)
    assert all(float(v.abs().max()) == 0.0 for v in same.values())


def test_swap_with_itself_is_the_own_decode_and_batches_do_not_matter():
    model = _model().train()
    images, donors = torch.rand(5, 1, 16, 16), torch.rand(5, 1, 16, 16)
    torch.testing.assert_close(swap_decode(model, images, images), own_decode(model, images))
    torch.testing.assert_close(swap_decode(model, images, donors, batch_size=2),
                               swap_decode(model, images, donors))
    assert model.training  # restored


@pytest.mark.parametrize("decoder_blocks", [1, 2])
def test_half_resolution_spatial_latent(decoder_blocks):
    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=16, channels=(4, 8, 8), spatial_signal=3, spatial_noise=2,
                            global_signal=5, global_noise=4, latent_stride=2,
                            decoder_blocks=decoder_blocks)
    images = torch.rand(3, 1, 16, 16)
    out = model(images, torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == (3, 1, 16, 16)
    assert out.posteriors["spatial"].mean.shape == (3, 5, 8, 8)
    assert out.spatial_prior.mean.shape == (3, 5, 8, 8)
    assert out.kl().shape == (3,) and torch.all(out.kl() >= 0)
    torch.testing.assert_close(model.decode(model.encode(images)), own_decode(model, images))


@pytest.mark.parametrize("latent_stride", [2, 4])
def test_separate_noise_encoder_gives_the_noise_parts(latent_stride):
    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=16, channels=(4, 8, 8), spatial_signal=3, spatial_noise=2,
                            global_signal=5, global_noise=4, latent_stride=latent_stride,
                            noise_channels=4)
    images = torch.rand(3, 1, 16, 16)
    q = model.posteriors(images)
    side = 16 // latent_stride
    assert q["spatial"].mean.shape == q["spatial"].log_var.shape == (3, 5, side, side)
    assert q["global"].mean.shape == (3, 9)
    # the noise parts are the noise encoder's outputs, the signal parts the main encoder's
    h = model.noise_trunk(images)
    torch.testing.assert_close(q["spatial"].mean[:, 3:], model.noise_spatial(h)[:, :2])
    torch.testing.assert_close(q["global"].mean[:, 5:], model.noise_global(h)[:, :4])
    assert model(images, torch.Generator().manual_seed(0)).reconstruction.shape == (3, 1, 16, 16)


def test_bf16_autocast_keeps_latents_in_float32():
    model = _model()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 1, 16, 16), torch.Generator().manual_seed(0))
    assert out.reconstruction.dtype == torch.bfloat16
    assert out.posteriors["spatial"].mean.dtype == torch.float32
    assert out.kl().dtype == torch.float32


@pytest.mark.parametrize("kwargs", [{"image_size": 12}, {"spatial_noise": -1},
                                    {"spatial_noise": 0, "global_noise": 0},
                                    {"spatial_noise": 0, "noise_channels": 4},
                                    {"channels": (4, 8)}, {"latent_stride": 8},
                                    {"decoder_blocks": 0}, {"noise_channels": -1}])
def test_bad_configuration_is_rejected(kwargs):
    with pytest.raises(ValueError):
        HierarchicalVAE(**{"image_size": 16, **kwargs})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("latent_stride", 3, r"hvae: latent_stride must be 2 or 4"),
    ("channels", [4, 8], r"hvae: channels must be three positive integers"),
    ("global_noise", -1, r"hvae: global_noise must be >= 0"),
    ("spatial_signal", 0, r"hvae: spatial_signal must be >= 1"),
])
def test_bad_model_parameters_are_named(key, value, message):
    with pytest.raises(ParameterError, match=message):
        from_params(HVAEModelParams, {key: value}, path="hvae")


@pytest.mark.parametrize("level, other", [("spatial", "global"), ("global", "spatial")])
def test_a_noise_part_of_zero_puts_the_split_at_the_other_level_only(level, other):
    """The ablation of the split's level: without a noise part at ``level`` its whole code is
    signal, so a swap leaves that level as it is and replaces the other level's noise part."""
    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=16, channels=(4, 8, 8), spatial_signal=3, global_signal=5,
                            **{"spatial_noise": 2, "global_noise": 4, f"{level}_noise": 0})
    images = torch.rand(4, 1, 16, 16)
    codes, donors = model.encode(images), model.encode(images.flip(0))
    split = model.split(codes)
    assert split[level][1].shape == (4, 0) and split[other][1].shape[1] > 0
    swapped = swap_noise(model, codes, donors)
    torch.testing.assert_close(swapped[level], codes[level])
    n_signal = model.splits[other][0]
    torch.testing.assert_close(swapped[other][:, n_signal:], donors[other][:, n_signal:])
    torch.testing.assert_close(swapped[other][:, :n_signal], codes[other][:, :n_signal])
    assert swap_decode(model, images, images.flip(0)).shape == (4, 1, 16, 16)


def test_model_parameters_are_the_registry_config():
    params = HVAEModelParams(channels=[4, 8, 8], spatial_signal=3, spatial_noise=2)
    model = build_model("hvae", {"image_size": 16, **params.config()}, seed=0)
    assert model.splits == {"spatial": (3, 2), "global": (32, 16)}


def _train_part(count: int = 6):
    g = torch.Generator().manual_seed(0)
    return {"clean": torch.rand(count, 8, 8, generator=g),
            "noisy": {4: torch.rand(count, 8, 8, generator=g) + 10,
                      8: torch.rand(count, 8, 8, generator=g) + 20}}


def test_swap_donors_come_from_the_pool_at_the_same_or_nearest_view_count():
    train = _train_part()
    clean, noisy = swap_donors(train, 8, 5, pool=3, generator=torch.Generator().manual_seed(1))
    assert clean.shape == noisy.shape == (5, 1, 8, 8)
    g = torch.Generator().manual_seed(1)
    clean_rows = torch.randint(0, 3, (5,), generator=g)  # clean donors first, then noisy
    noisy_rows = torch.randint(0, 3, (5,), generator=g)
    torch.testing.assert_close(clean[:, 0], train["clean"][clean_rows])
    torch.testing.assert_close(noisy[:, 0], train["noisy"][8][noisy_rows])
    _, nearest = swap_donors(train, 5, 5, pool=3, generator=torch.Generator().manual_seed(1))
    assert (nearest < 20).all()  # 5 views: the donors of the 4-view training images


def test_swap_panels_show_other_images_noisy_and_both_swaps():
    model = _model()
    clean = torch.rand(3, 16, 16)
    true_noisy = clean + 0.1
    donors = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    panels = swap_panels(model, clean, true_noisy, *donors)
    assert list(panels) == ["noisy", "noisy recon.", "clean", "clean recon.",
                            "noise removed (swap)", "noise injected (swap)", "true noisy of clean"]
    assert all(p.shape == (3, 16, 16) for p in panels.values())
    torch.testing.assert_close(panels["noisy"][0], true_noisy[1])
    torch.testing.assert_close(panels["noise removed (swap)"],
                               swap_decode(model, panels["noisy"][:, None], donors[0])[:, 0])
