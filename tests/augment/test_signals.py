"""Time-series augmentations: pure, reproducible under one seed, and each doing what it says."""

import pytest
import torch

from contrastive_signals.augment.signals import (
    SignalAugmentation,
    frequency_mask,
    jitter,
    random_crop,
    scaling,
    time_shift,
    time_warp,
)

AUGMENTATIONS = {
    "jitter": lambda x, g: jitter(x, sigma=0.1, generator=g),
    "scaling": lambda x, g: scaling(x, sigma=0.2, generator=g),
    "time_shift": lambda x, g: time_shift(x, max_shift=5, generator=g),
    "random_crop": lambda x, g: random_crop(x, min_fraction=0.5, generator=g),
    "time_warp": lambda x, g: time_warp(x, sigma=0.3, knots=4, generator=g),
    "frequency_mask": lambda x, g: frequency_mask(x, max_fraction=0.3, generator=g),
    "chain": lambda x, g: SignalAugmentation()(x, generator=g),
}


def batch():
    t = torch.linspace(0, 6.28, 32)
    return torch.stack([torch.stack([torch.sin(t * k), torch.cos(t * k)], -1)
                        for k in range(1, 5)])  # [4, 32, 2]


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_pure_reproducible_and_shape_preserving(name):
    x = batch()
    before = x.clone()
    a = AUGMENTATIONS[name](x, torch.Generator().manual_seed(1))
    b = AUGMENTATIONS[name](x, torch.Generator().manual_seed(1))
    c = AUGMENTATIONS[name](x, torch.Generator().manual_seed(2))
    assert torch.equal(x, before)
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_global_random_state_untouched():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for apply in AUGMENTATIONS.values():
        apply(batch(), torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), expected)


def test_identities_at_zero_strength():
    x, g = batch(), torch.Generator().manual_seed(0)
    assert torch.equal(jitter(x, sigma=0.0, generator=g), x)
    assert torch.equal(scaling(x, sigma=0.0, generator=g), x)
    assert torch.equal(time_shift(x, max_shift=0, generator=g), x)
    assert torch.allclose(random_crop(x, min_fraction=1.0, generator=g), x, atol=1e-5)
    assert torch.allclose(time_warp(x, sigma=0.0, knots=3, generator=g), x, atol=1e-5)
    assert torch.allclose(frequency_mask(x, max_fraction=0.0, generator=g), x, atol=1e-5)


def test_time_shift_is_a_circular_roll_per_sample():
    x = torch.arange(10.0).view(1, 10, 1).repeat(6, 1, 1)
    out = time_shift(x, max_shift=3, generator=torch.Generator().manual_seed(0))
    for row in out[..., 0]:
        shift = int((-row[0]) % 10)
        assert torch.equal(row, torch.roll(x[0, :, 0], shift))
        assert min(shift, 10 - shift) <= 3


def test_scaling_is_one_factor_per_sample_channel():
    x = batch()
    out = scaling(x, sigma=0.3, generator=torch.Generator().manual_seed(0))
    ratio = out / x
    finite = x.abs() > 1e-3
    for i in range(x.shape[0]):
        for c in range(x.shape[2]):
            r = ratio[i, :, c][finite[i, :, c]]
            assert torch.allclose(r, r[0].expand_as(r), atol=1e-4)


def test_frequency_mask_keeps_the_mean_and_time_warp_keeps_the_ends():
    x = batch() + 1.0
    masked = frequency_mask(x, max_fraction=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(masked.mean(1), x.mean(1), atol=1e-5)  # DC bin never masked
    warped = time_warp(x, sigma=0.5, knots=4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(warped[:, [0, -1]], x[:, [0, -1]], atol=1e-5)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"crop_p": 1.5}, "crop_p"), ({"crop_min_fraction": 0.0}, "crop_min_fraction"),
    ({"jitter_sigma": -1.0}, "jitter_sigma"), ({"warp_knots": 0}, "warp_knots"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SignalAugmentation(**kwargs)


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\[B, T, C\]"):
        jitter(torch.zeros(4, 10), sigma=0.1, generator=torch.Generator())
