import numpy as np
import pytest

from contrastive_signals.data.ct_phantoms import (
    EllipseSpec,
    check_image_stack,
    digit_phantoms,
    ellipse_phantoms,
    fit_to_circle,
    sample_image_patches,
    skimage_sample_images,
)
from contrastive_signals.signal.radon import circle_mask


def test_ellipse_phantoms_are_reproducible_in_range_and_inside_the_circle():
    a = ellipse_phantoms(6, size=32, spec=EllipseSpec(), rng=np.random.default_rng(3))
    b = ellipse_phantoms(6, size=32, spec=EllipseSpec(), rng=np.random.default_rng(3))
    c = ellipse_phantoms(6, size=32, spec=EllipseSpec(), rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (6, 32, 32) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    assert np.all(a[:, ~circle_mask(32)] == 0)
    assert np.all(a.reshape(6, -1).max(axis=1) > 0.2)  # every phantom has an object


@pytest.mark.parametrize("kwargs", [
    {"min_ellipses": 0}, {"min_ellipses": 4, "max_ellipses": 3}, {"min_axis": 0.0},
    {"max_axis": 1.5}, {"min_intensity": 1.0, "max_intensity": 0.0}, {"max_centre_radius": 1.0}])
def test_bad_ellipse_statistics_are_rejected(kwargs):
    with pytest.raises(ValueError):
        EllipseSpec(**kwargs)


def test_fit_to_circle_and_digits():
    square = np.ones((2, 10, 10), dtype=np.float32)
    square[1] = 0.0
    out = fit_to_circle(square, size=32)
    assert out.shape == (2, 32, 32) and out.max() == 1.0 and out[1].max() == 0.0
    assert np.all(out[:, ~circle_mask(32)] == 0)
    digits = digit_phantoms(np.random.default_rng(0).random((3, 8, 8)), size=24)
    assert digits.shape == (3, 24, 24) and 0 <= digits.min() and digits.max() <= 1


def test_sample_image_patches_use_every_image_and_are_seeded():
    images = skimage_sample_images(("camera", "coins"))
    assert set(images) == {"camera", "coins"} and images["camera"].max() <= 1.0
    a = sample_image_patches(images, 4, size=32, patch=64, rng=np.random.default_rng(0))
    b = sample_image_patches(images, 4, size=32, patch=64, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 32, 32) and np.all(a[:, ~circle_mask(32)] == 0)
    with pytest.raises(ValueError, match="smaller than patch"):
        sample_image_patches(images, 1, size=32, patch=1000, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown sample image"):
        skimage_sample_images(("astronaut_in_space",))


def test_check_image_stack_names_the_problem():
    ok = [np.zeros((8, 8)), np.ones((8, 8))]
    check_image_stack(ok, source="folder x")
    with pytest.raises(ValueError, match="folder x: no images"):
        check_image_stack([], source="folder x")
    with pytest.raises(ValueError, match="mixed sizes.*image 1 is \\(9, 8\\)"):
        check_image_stack([np.zeros((8, 8)), np.zeros((9, 8))], source="folder x")
    with pytest.raises(ValueError, match="image 1 holds non-finite"):
        check_image_stack([np.zeros((8, 8)), np.full((8, 8), np.nan)], source="folder x")
    with pytest.raises(ValueError, match="2-D grey"):
        check_image_stack([np.zeros((8, 8, 3))], source="folder x")
