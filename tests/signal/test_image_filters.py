"""Tests for classical spatial image filters (contrastive_signals.signal.image_filters)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from contrastive_signals.signal.image_filters import (
    SPATIAL_FILTERS,
    add_filter_channels,
    box_filter,
    denormalize,
    laplacian,
    laplacian_sharpen,
    normalize,
)

LAPLACIAN_KERNEL = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _images(batch: int = 3, channels: int = 2, height: int = 12, width: int = 15):
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, channels, height, width, generator=g, dtype=torch.float64)


def _per_image(images: torch.Tensor, fn) -> np.ndarray:
    """Apply a 2-D numpy function to every [H, W] plane, the slow reference path."""
    planes = images.numpy()
    return np.stack([np.stack([fn(plane) for plane in sample]) for sample in planes])


# Replicate padding in torch is scipy.ndimage's "nearest" mode.
@pytest.mark.parametrize("size", [1, 3, 5])
def test_box_filter_matches_scipy_uniform_filter(size):
    images = _images()
    expected = _per_image(images, lambda p: ndi.uniform_filter(p, size=size, mode="nearest"))
    np.testing.assert_allclose(box_filter(images, size=size).numpy(), expected, atol=1e-12)


def test_laplacian_matches_scipy_laplace_and_convolve():
    images = _images()
    out = laplacian(images).numpy()
    np.testing.assert_allclose(
        out, _per_image(images, lambda p: ndi.laplace(p, mode="nearest")), atol=1e-12
    )
    by_convolve = _per_image(images, lambda p: ndi.convolve(p, LAPLACIAN_KERNEL, mode="nearest"))
    np.testing.assert_allclose(out, by_convolve, atol=1e-12)


@pytest.mark.parametrize("amount", [0.0, 0.5, 2.0])
def test_sharpen_is_image_minus_scaled_laplacian(amount):
    images = _images()
    expected = _per_image(images, lambda p: p - amount * ndi.laplace(p, mode="nearest"))
    np.testing.assert_allclose(
        laplacian_sharpen(images, amount=amount).numpy(), expected, atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(SPATIAL_FILTERS))
def test_batched_filter_equals_per_image_loop(name):
    images = _images(batch=4, channels=3).float()
    fn = SPATIAL_FILTERS[name]
    looped = torch.cat([fn(images[i : i + 1]) for i in range(images.shape[0])])
    torch.testing.assert_close(fn(images), looped, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", sorted(SPATIAL_FILTERS))
def test_channels_are_filtered_independently(name):
    images = _images(batch=2, channels=3).float()
    fn = SPATIAL_FILTERS[name]
    per_channel = torch.cat([fn(images[:, c : c + 1]) for c in range(3)], dim=1)
    torch.testing.assert_close(fn(images), per_channel, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", sorted(SPATIAL_FILTERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_filters_keep_shape_dtype_and_do_not_mutate(name, dtype):
    images = _images().to(dtype)
    before = images.clone()
    out = SPATIAL_FILTERS[name](images)
    assert torch.equal(images, before)
    assert out.shape == images.shape and out.dtype == dtype


def test_borders_are_not_darkened_and_flat_images_have_no_edges():
    flat = torch.full((2, 1, 9, 9), 0.8)
    torch.testing.assert_close(box_filter(flat, size=5), flat)
    torch.testing.assert_close(laplacian(flat), torch.zeros_like(flat))
    torch.testing.assert_close(laplacian_sharpen(flat), flat)


def test_laplacian_of_a_point_is_the_kernel():
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[0, 0, 2, 2] = 1.0
    out = laplacian(impulse)[0, 0, 1:4, 1:4]
    torch.testing.assert_close(out, torch.tensor(LAPLACIAN_KERNEL, dtype=torch.float32))


def test_normalize_maps_unit_range_to_symmetric_and_round_trips():
    images = _images()
    out = normalize(images)
    torch.testing.assert_close(out, (images - 0.5) / 0.5)
    edges = normalize(torch.tensor([0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 2))
    torch.testing.assert_close(edges.flatten(), torch.tensor([-1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(denormalize(out), images)


def test_normalize_per_channel_matches_broadcast_formula():
    images = _images(channels=2)
    mean, std = [0.1307, 0.2], [0.3081, 0.5]
    expected = (images - torch.tensor(mean).view(1, 2, 1, 1).double()) / torch.tensor(std).view(
        1, 2, 1, 1
    ).double()
    out = normalize(images, mean=mean, std=std)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(denormalize(out, mean=mean, std=std), images)


def test_add_filter_channels_stacks_original_then_each_filter():
    images = _images(batch=2, channels=2).float()
    out = add_filter_channels(images, filters=["laplacian", "box"])
    assert out.shape == (2, 6, 12, 15)
    torch.testing.assert_close(out[:, 0:2], images)
    torch.testing.assert_close(out[:, 2:4], laplacian(images))
    torch.testing.assert_close(out[:, 4:6], box_filter(images))
    torch.testing.assert_close(add_filter_channels(images, filters=[]), images)


def test_add_filter_channels_rejects_unknown_names_listing_valid_ones():
    with pytest.raises(ValueError, match="sobel") as info:
        add_filter_channels(_images(), filters=["box", "sobel"])
    for name in SPATIAL_FILTERS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: add_filter_channels(x, filters=["box"]),
        box_filter,
        laplacian,
        laplacian_sharpen,
        normalize,
        denormalize,
    ],
)
def test_non_4d_input_is_rejected_with_its_shape(call):
    with pytest.raises(ValueError, match=r"\(12, 15\)"):
        call(torch.zeros(12, 15))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda x: box_filter(x, size=4), "size"),
        (lambda x: box_filter(x, size=0), "size"),
        (lambda x: laplacian_sharpen(x, amount=-1.0), "amount"),
        (lambda x: normalize(x, std=0.0), "std"),
        (lambda x: normalize(x, mean=[0.1, 0.2, 0.3]), "mean"),
        (lambda x: denormalize(x, std=[1.0, -1.0]), "std"),
        (lambda x: add_filter_channels(x, filters="box"), "filters"),
        (lambda x: laplacian(x.long()), "floating"),
    ],
)
def test_bad_params_raise_naming_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call(_images())
