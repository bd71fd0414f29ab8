"""Tests for batched image augmentations (contrastive_signals.augment.images)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from contrastive_signals.augment.images import (
    ViewAugmentation,
    apply_affine,
    compose_affine,
    crop_matrices,
    from_params,
    gaussian_blur,
    gaussian_kernels,
    gaussian_noise,
    random_affine,
    random_affine_matrices,
    random_erasing,
    rotation_shear_translation_matrices,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _digits(batch: int = 8, channels: int = 1, size: int = 28, dtype=torch.float32):
    """Smooth blobs on a zero background, like normalised-free digit images."""
    g = _gen(1234)
    images = torch.rand(batch, channels, size // 4, size // 4, generator=g, dtype=torch.float64)
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear")
    images[..., :3, :] = 0
    images[..., :, :3] = 0
    return images.to(dtype)


# Each entry makes one random function usable as f(images, generator).
AUGMENTATIONS = {
    "random_affine": lambda x, g: random_affine(x, generator=g),
    "gaussian_noise": lambda x, g: gaussian_noise(x, std=0.2, generator=g),
    "gaussian_blur": lambda x, g: gaussian_blur(x, p=1.0, generator=g),
    "random_erasing": lambda x, g: random_erasing(x, p=1.0, generator=g),
    "view_augmentation": lambda x, g: ViewAugmentation(erase_p=0.5)(x, generator=g),
}


# ----------------------------------------------------------------------------- common contract


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_same_seed_same_output_different_seed_different_output(name):
    augment = AUGMENTATIONS[name]
    images = _digits()
    first = augment(images, _gen(0))
    again = augment(images, _gen(0))
    other = augment(images, _gen(1))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_not_mutated_and_shape_dtype_kept(name, dtype):
    images = _digits(batch=5, channels=3, dtype=dtype)
    before = images.clone()
    out = AUGMENTATIONS[name](images, _gen(0))
    assert torch.equal(images, before)
    assert out.shape == images.shape
    assert out.dtype == dtype
    assert out.data_ptr() != images.data_ptr()


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_empty_batch_gives_empty_batch(name):
    images = torch.zeros(0, 1, 28, 28)
    assert AUGMENTATIONS[name](images, _gen(0)).shape == images.shape


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_rejects_non_4d_input_naming_the_shape(name):
    with pytest.raises(ValueError, match=r"\(1, 28, 28\)"):
        AUGMENTATIONS[name](torch.zeros(1, 28, 28), _gen(0))


def test_rejects_integer_images():
    with pytest.raises(ValueError, match="floating"):
        random_affine(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), generator=_gen(0))


def test_rejects_missing_generator_object():
    with pytest.raises(ValueError, match="generator"):
        gaussian_noise(_digits(), std=0.1, generator=0)


# ----------------------------------------------------------------------------- geometry


def test_identity_parameters_reproduce_the_input():
    images = _digits(batch=4, channels=2)
    out = random_affine(
        images,
        generator=_gen(0),
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        max_rotation_deg=0.0,
        max_shear_deg=0.0,
        max_translate=0.0,
    )
    # align_corners=False puts -1/1 on the pixel edges, so the identity grid hits pixel centres.
    torch.testing.assert_close(out, images, atol=1e-5, rtol=0)


def test_identity_matrices_are_exact_identity():
    matrices = random_affine_matrices(
        6,
        generator=_gen(0),
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        max_rotation_deg=0.0,
        max_shear_deg=0.0,
        max_translate=0.0,
    )
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(6, 2, 3)
    torch.testing.assert_close(matrices, expected, atol=1e-6, rtol=0)


def _pixel_box(top: int, left: int, height: int, width: int, size: tuple[int, int]):
    h_img, w_img = size
    return torch.tensor(
        [[2 * left / w_img - 1, 2 * top / h_img - 1,
          2 * (left + width) / w_img - 1, 2 * (top + height) / h_img - 1]]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("top", "left", "height", "width"), [(3, 5, 17, 20), (0, 0, 20, 20), (6, 2, 22, 16)]
)
def test_crop_matches_torchvision_resized_crop(top, left, height, width):
    image = _digits(batch=1, channels=3)
    ours = apply_affine(image, crop_matrices(_pixel_box(top, left, height, width, (28, 28))))
    ref = TF.resized_crop(
        image, top, left, height, width, [28, 28],
        interpolation=InterpolationMode.BILINEAR, antialias=False,
    )  # fmt: skip
    # Tolerance: inside, both sample the same source positions, so they agree to float
    # rounding (1e-5). On the outermost ring torchvision's resize clamps to the crop's edge
    # pixel, while grid_sample blends in the pixel just outside the crop (or the zero padding),
    # which is a deliberate difference; it is bounded by the image's largest neighbour step.
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=0)
    step = max(image.diff(dim=-1).abs().max().item(), image.diff(dim=-2).abs().max().item())
    assert (ours - ref).abs().max().item() <= step + 1e-5


@pytest.mark.parametrize(
    ("angle", "shear", "tx", "ty"),
    [(12.0, 0.0, 0.0, 0.0), (0.0, 8.0, 0.0, 0.0), (0.0, 0.0, 0.1, -0.05), (-13.0, 7.0, 0.08, 0.1)],
)
@pytest.mark.parametrize("size", [(28, 28), (20, 30)])
def test_rotation_shear_translation_match_torchvision_affine(angle, shear, tx, ty, size):
    height, width = size
    image = torch.rand(1, 2, height, width, generator=_gen(3))
    matrices = rotation_shear_translation_matrices(
        torch.tensor([angle]), torch.tensor([shear]), torch.tensor([[tx, ty]]),
        aspect=width / height,
    )  # fmt: skip
    ours = apply_affine(image, matrices)
    ref = TF.affine(
        image, angle=angle, translate=[tx * width, ty * height], scale=1.0,
        shear=[shear, 0.0], interpolation=InterpolationMode.BILINEAR,
    )  # fmt: skip
    # Same inverse map and the same bilinear/zero-padding sampler: equal up to float rounding.
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_compose_affine_applies_inner_then_outer():
    outer = torch.randn(3, 2, 3, generator=_gen(0))
    inner = torch.randn(3, 2, 3, generator=_gen(1))
    points = torch.randn(3, 2, 5, generator=_gen(2))

    def apply(m, p):
        return m[..., :2] @ p + m[..., 2:]

    torch.testing.assert_close(
        apply(compose_affine(outer, inner), points), apply(outer, apply(inner, points))
    )


def test_random_crops_have_requested_area_and_stay_inside():
    matrices = random_affine_matrices(
        4096,
        generator=_gen(0),
        crop_scale=(0.3, 0.7),
        crop_ratio=(1.0, 1.0),  # square crops of area <= 1 never need clipping
        max_rotation_deg=0.0,
        max_shear_deg=0.0,
        max_translate=0.0,
    )
    half_w, half_h = matrices[:, 0, 0], matrices[:, 1, 1]
    area = half_w * half_h
    assert area.min() >= 0.3 - 1e-6 and area.max() <= 0.7 + 1e-6
    assert (matrices[:, 0, 2].abs() + half_w).max() <= 1 + 1e-6
    assert (matrices[:, 1, 2].abs() + half_h).max() <= 1 + 1e-6
    # Positions spread over the allowed range rather than all sitting at the centre.
    assert matrices[:, 0, 2].abs().max() > 0.4


def test_random_geometry_keeps_area_and_stays_in_bounds():
    matrices = random_affine_matrices(
        2048, generator=_gen(0), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
        max_rotation_deg=15.0, max_shear_deg=10.0, max_translate=0.1,
    )  # fmt: skip
    # Rotation and shear preserve area: the linear part has determinant 1.
    torch.testing.assert_close(
        torch.linalg.det(matrices[:, :, :2]), torch.ones(2048), atol=1e-5, rtol=0
    )
    # Shifts are inv @ (2 * t), |2 t| <= 0.2 per axis, rows of inv have 1-norm <= ~1.45 here.
    assert matrices[:, :, 2].abs().max() <= 0.3


def test_batched_affine_equals_per_image_loop():
    images = _digits(batch=6, channels=2)
    matrices = random_affine_matrices(6, generator=_gen(5))
    batched = apply_affine(images, matrices)
    looped = torch.cat([apply_affine(images[i : i + 1], matrices[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(batched, looped, atol=1e-6, rtol=0)
    torch.testing.assert_close(random_affine(images, generator=_gen(5)), batched)


def test_random_affine_keeps_a_zero_background_zero():
    images = torch.zeros(4, 1, 28, 28)
    assert torch.equal(random_affine(images, generator=_gen(0)), images)


# ----------------------------------------------------------------------------- noise


def test_noise_std_matches_request_on_a_large_batch():
    images = torch.zeros(512, 1, 28, 28)
    noisy = gaussian_noise(images, std=0.3, generator=_gen(0))
    assert abs(noisy.std().item() - 0.3) < 0.003  # 400k samples: relative error ~0.1%
    assert abs(noisy.mean().item()) < 0.003


def test_noise_probability_selects_whole_samples():
    images = torch.ones(2000, 1, 8, 8)
    noisy = gaussian_noise(images, std=0.5, p=0.25, generator=_gen(0))
    touched = (noisy != images).flatten(1).any(dim=1)
    untouched_exact = torch.equal(noisy[~touched], images[~touched])
    assert untouched_exact
    assert abs(touched.float().mean().item() - 0.25) < 0.04  # 4 binomial std devs
    # Touched samples are noisy everywhere, not on a few pixels.
    assert (noisy[touched] != 1).float().mean() > 0.99


def test_zero_noise_is_identity():
    images = _digits()
    assert torch.equal(gaussian_noise(images, std=0.0, generator=_gen(0)), images)
    assert torch.equal(gaussian_noise(images, std=0.5, p=0.0, generator=_gen(0)), images)


# ----------------------------------------------------------------------------- blur


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("sigma", [0.4, 1.0])
def test_blur_matches_torchvision_and_scipy_for_fixed_sigma(kernel_size, sigma):
    images = _digits(batch=3, channels=2, dtype=torch.float64)
    ours = gaussian_blur(
        images, sigma_range=(sigma, sigma), kernel_size=kernel_size, p=1.0, generator=_gen(0)
    )
    ref_tv = TF.gaussian_blur(images, kernel_size=[kernel_size, kernel_size], sigma=[sigma, sigma])
    torch.testing.assert_close(ours, ref_tv, atol=1e-10, rtol=0)
    # torch's "reflect" padding (edge not repeated) is scipy's "mirror" mode.
    for b in range(3):
        for c in range(2):
            ref = ndi.gaussian_filter(
                images[b, c].numpy(), sigma=sigma, mode="mirror", radius=kernel_size // 2
            )
            np.testing.assert_allclose(ours[b, c].numpy(), ref, atol=1e-10)


def test_blur_batched_equals_per_image_loop_with_per_sample_sigma():
    images = _digits(batch=6, channels=3, dtype=torch.float64)
    out = gaussian_blur(images, sigma_range=(0.2, 1.5), kernel_size=5, p=0.5, generator=_gen(7))
    # Replay the documented draw: rand(B, 2) -> (apply < p, sigma).
    u = torch.rand(6, 2, generator=_gen(7))
    sigmas = 0.2 + 1.3 * u[:, 1].double()
    for i in range(6):
        if u[i, 0] < 0.5:
            s = float(sigmas[i])
            expected = TF.gaussian_blur(images[i : i + 1], kernel_size=[5, 5], sigma=[s, s])
        else:
            expected = images[i : i + 1]
        torch.testing.assert_close(out[i : i + 1], expected, atol=1e-10, rtol=0)
    assert (u[:, 0] < 0.5).any() and (u[:, 0] >= 0.5).any()


def test_gaussian_kernels_are_normalised_and_symmetric():
    kernels = gaussian_kernels(torch.tensor([0.3, 1.0, 2.0]), 5)
    torch.testing.assert_close(kernels.sum(dim=-1), torch.ones(3))
    torch.testing.assert_close(kernels, kernels.flip(-1))


def test_blur_keeps_constant_images_constant():
    images = torch.full((3, 1, 10, 10), 0.7)
    out = gaussian_blur(images, p=1.0, kernel_size=5, generator=_gen(0))
    torch.testing.assert_close(out, images)


# ----------------------------------------------------------------------------- erasing


def test_erasing_sets_one_rectangle_of_the_requested_area():
    images = torch.ones(500, 2, 28, 28)
    out = random_erasing(images, scale=(0.05, 0.2), p=1.0, generator=_gen(0))
    erased = out == 0
    assert torch.equal(erased[:, 0], erased[:, 1])  # same rectangle on every channel
    fraction = erased[:, 0].flatten(1).float().mean(dim=1)
    # Rounding the sides to whole pixels moves the area a little; clipping only shrinks it.
    assert fraction.min() > 0.02 and fraction.max() < 0.26
    rows_hit = erased[:, 0].any(dim=2).sum(dim=1)
    cols_hit = erased[:, 0].any(dim=1).sum(dim=1)
    assert torch.equal(rows_hit * cols_hit, erased[:, 0].flatten(1).sum(dim=1))  # a rectangle


def test_erasing_with_zero_probability_is_identity():
    images = _digits()
    assert torch.equal(random_erasing(images, p=0.0, generator=_gen(0)), images)


# ----------------------------------------------------------------------------- ViewAugmentation


def test_view_augmentation_composes_affine_blur_noise_in_order():
    images = _digits()
    aug = ViewAugmentation(noise_std=0.2, noise_p=1.0, blur_p=1.0)
    g = _gen(11)
    expected = random_affine(images, generator=g)
    expected = gaussian_blur(expected, sigma_range=(0.1, 1.0), kernel_size=3, p=1.0, generator=g)
    expected = gaussian_noise(expected, std=0.2, p=1.0, generator=g)
    assert torch.equal(aug(images, generator=_gen(11)), expected)


def test_two_views_differ_and_are_reproducible():
    images = _digits()
    aug = ViewAugmentation()
    first, second = aug.two_views(images, generator=_gen(0))
    again = aug.two_views(images, generator=_gen(0))
    assert first.shape == second.shape == images.shape
    assert not torch.allclose(first, second)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])


def test_from_params_accepts_yaml_lists_and_rejects_unknown_keys():
    aug = from_params({"crop_scale": [0.5, 1.0], "noise_std": 0, "blur_kernel_size": 5})
    assert aug == ViewAugmentation(crop_scale=(0.5, 1.0), noise_std=0.0, blur_kernel_size=5)
    assert aug.crop_scale == (0.5, 1.0) and isinstance(aug.crop_scale, tuple)
    hash(aug)  # frozen and made of tuples, so usable as a key
    with pytest.raises(ValueError, match="crop_sclae") as info:
        ViewAugmentation.from_params({"crop_sclae": [0.5, 1.0]})
    for name in ("crop_scale", "noise_std", "blur_p"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("crop_scale", (0.9, 0.5)),
        ("crop_scale", (0.0, 1.0)),
        ("crop_scale", (0.5, 1.2)),
        ("crop_ratio", (4 / 3, 3 / 4)),
        ("crop_ratio", (-1.0, 1.0)),
        ("max_rotation_deg", -1.0),
        ("max_shear_deg", 90.0),
        ("max_translate", 1.5),
        ("blur_sigma_range", (0.0, 1.0)),
        ("blur_sigma_range", (2.0, 1.0)),
        ("blur_kernel_size", 4),
        ("blur_kernel_size", 3.0),
        ("blur_p", 1.5),
        ("noise_std", -0.1),
        ("noise_p", -0.2),
        ("erase_p", float("nan")),
        ("erase_scale", (0.3, 0.1)),
        ("crop_scale", 0.5),
    ],
)
def test_bad_view_augmentation_params_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ViewAugmentation(**{field: value})


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda x, g: random_affine(x, generator=g, crop_scale=(1.0, 0.5)), "crop_scale"),
        (lambda x, g: random_affine(x, generator=g, max_shear_deg=-5), "max_shear_deg"),
        (lambda x, g: gaussian_noise(x, std=-1.0, generator=g), "std"),
        (lambda x, g: gaussian_noise(x, std=1.0, p=2.0, generator=g), "p"),
        (lambda x, g: gaussian_blur(x, kernel_size=2, generator=g), "kernel_size"),
        (lambda x, g: gaussian_blur(x, sigma_range=(1.0, 0.1), generator=g), "sigma_range"),
        (lambda x, g: random_erasing(x, ratio=(3.0, 0.3), generator=g), "ratio"),
        (lambda x, g: random_affine_matrices(-1, generator=g), "batch_size"),
    ],
)
def test_bad_function_params_raise_naming_the_parameter(call, field):
    with pytest.raises(ValueError, match=field):
        call(_digits(), _gen(0))


def test_view_augmentation_fields_all_have_defaults():
    # from_params({}) must work so a parameters file only lists what it changes.
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(ViewAugmentation))
    assert from_params({}) == ViewAugmentation()


# ----------------------------------------------------------------------------- devices


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_give_the_same_views_for_the_same_seed():
    images = _digits(batch=16, channels=1)
    aug = ViewAugmentation(erase_p=0.5, blur_p=0.5, noise_p=0.5)
    cpu_views = aug.two_views(images, generator=_gen(3))
    cuda_views = aug.two_views(images.cuda(), generator=_gen(3))
    for cpu_view, cuda_view in zip(cpu_views, cuda_views, strict=True):
        assert cuda_view.device.type == "cuda"
        # Same parameters and noise (drawn on the CPU); only kernel rounding differs.
        torch.testing.assert_close(cuda_view.cpu(), cpu_view, atol=1e-5, rtol=0)


def test_border_padding_keeps_normalised_background():
    from contrastive_signals.augment.images import ViewAugmentation

    background = -torch.ones(4, 1, 28, 28)  # a blank image after (x - 0.5) / 0.5
    aug = ViewAugmentation(crop_scale=(0.5, 0.6), max_translate=0.3, blur_p=0.0, noise_std=0.0,
                           padding_mode="border")
    out = aug(background, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, background)
    zeros = ViewAugmentation(crop_scale=(0.5, 0.6), max_translate=0.3, max_rotation_deg=45.0,
                             blur_p=0.0, noise_std=0.0)(background, generator=torch.Generator().manual_seed(0))
    assert zeros.max() > -1.0  # zero padding brings grey into a normalised image


def test_bad_padding_mode_is_named():
    from contrastive_signals.augment.images import ViewAugmentation

    with pytest.raises(ValueError, match="padding_mode"):
        ViewAugmentation(padding_mode="wrap")
