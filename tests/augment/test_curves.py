"""Curve augmentations: reproducible under a seed, shapes, effects, derivative consistency."""

import numpy as np
import pytest
import torch

from contrastive_signals.augment.curves import (
    CurveAugmentation,
    baseline_tilt,
    gaussian_noise,
    stretch_shift,
    with_derivative,
)


def curves(b=4, length=64):
    t = torch.linspace(0, 1, length)
    return torch.stack([torch.sin(6 * t + i) for i in range(b)])[:, None]   # [B, 1, L]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_noise_std_within_bound_and_seeded():
    x = torch.zeros(200, 1, 256)
    a, b = gaussian_noise(x, max_std=0.5, generator=gen()), gaussian_noise(x, max_std=0.5,
                                                                          generator=gen())
    torch.testing.assert_close(a, b)
    std = a.std(dim=-1).flatten()
    assert std.max() < 0.6 and std.min() >= 0 and 0.15 < std.mean() < 0.35
    assert not torch.equal(a, gaussian_noise(x, max_std=0.5, generator=gen(1)))


def test_stretch_shift_identity_and_pure_shift():
    x = curves()
    same = stretch_shift(x, max_stretch=0.0, max_shift=0.0, anchor_fraction=0.0, generator=gen())
    torch.testing.assert_close(same, x)
    ramp = torch.arange(10.0)[None, None].repeat(3, 1, 1)
    shifted = stretch_shift(ramp, max_stretch=0.0, max_shift=0.2, anchor_fraction=0.0,
                            generator=gen())
    # a shift of d samples: out[j] = j - d inside the curve, edge values outside
    d = ramp[:, 0, 5] - shifted[:, 0, 5]
    assert torch.all(d.abs() <= 2.0 + 1e-6)
    torch.testing.assert_close(shifted[:, 0, 4:7] - ramp[:, 0, 4:7] + d[:, None],
                               torch.zeros(3, 3))


def test_baseline_tilt_adds_a_line():
    x = torch.zeros(5, 1, 50)
    out = baseline_tilt(x, max_offset=1.0, max_tilt=2.0, generator=gen())
    second = out[..., 2:] - 2 * out[..., 1:-1] + out[..., :-2]
    assert second.abs().max() < 1e-5 and out.abs().max() <= 3.0


def test_augmentation_recomputes_the_derivative_channel():
    x = with_derivative(curves())
    np.testing.assert_allclose(x[:, 1].numpy(), np.gradient(x[:, 0].numpy(), axis=-1), atol=1e-6)
    view = CurveAugmentation()(x, gen())
    assert view.shape == x.shape and not torch.equal(view, x)
    torch.testing.assert_close(view[:, 1], torch.gradient(view[:, 0], dim=-1)[0])
    torch.testing.assert_close(view, CurveAugmentation()(x, gen()))
    force_only = CurveAugmentation(derivative_channel=False)(curves(), gen())
    assert force_only.shape == (4, 1, 64)


def test_views_recompute_the_derivative_with_the_step_options():
    from contrastive_signals.signal.filters import add_derivative_channel

    options = {"scale": 0.5, "smooth_window": 7, "smooth_order": 2}
    x = with_derivative(curves(), **options)
    np.testing.assert_allclose(x.numpy(), add_derivative_channel(curves().numpy(), **options),
                               rtol=1e-6)
    augment = CurveAugmentation(derivative_options=tuple(options.items()))
    view = augment(x, gen())
    np.testing.assert_allclose(view[:, 1].numpy(), add_derivative_channel(
        view[:, :1].numpy(), **options)[:, 1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(view, augment(x, gen()))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[B, 2, L\]"):
        CurveAugmentation()(curves(), gen())
    with pytest.raises(ValueError, match="noise_p"):
        CurveAugmentation(noise_p=1.5)
    with pytest.raises(ValueError, match="max_stretch"):
        stretch_shift(curves(), max_stretch=1.0, max_shift=0.0, anchor_fraction=0.0,
                      generator=gen())
    with pytest.raises(ValueError, match=r"\[B, C, L\]"):
        gaussian_noise(torch.zeros(3, 4), max_std=0.1, generator=gen())
