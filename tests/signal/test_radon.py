"""Batched Radon projector and FBP against scikit-image's radon/iradon on the same images."""

import numpy as np
import pytest
import torch
from skimage.transform import iradon, radon

from contrastive_signals.signal.radon import SparseViewCT, circle_mask, view_angles

GEOMETRIES = [(32, 7), (33, 5), (24, 24), (64, 18)]


def _images(size: int, count: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((count, size, size)) * circle_mask(size)


@pytest.mark.parametrize(("size", "views"), GEOMETRIES)
def test_projection_matches_skimage_radon(size, views):
    images = _images(size)
    operator = SparseViewCT(size, views, dtype=torch.float64)
    ours = operator.project(torch.from_numpy(images)).numpy()
    reference = np.stack([radon(image, theta=view_angles(views)).T for image in images])
    assert ours.shape == (3, views, size)
    np.testing.assert_allclose(ours, reference, atol=1e-10)


@pytest.mark.parametrize(("size", "views"), GEOMETRIES)
def test_fbp_matches_skimage_iradon(size, views):
    sinograms = np.stack([radon(image, theta=view_angles(views)) for image in _images(size)])
    operator = SparseViewCT(size, views, dtype=torch.float64)
    ours = operator.fbp(torch.from_numpy(sinograms.transpose(0, 2, 1).copy())).numpy()
    reference = np.stack([iradon(s, theta=view_angles(views), filter_name="ramp",
                                 interpolation="linear") for s in sinograms])
    np.testing.assert_allclose(ours, reference, atol=1e-10)


def test_sparse_view_is_fbp_of_projection_and_float32_is_close():
    images = torch.from_numpy(_images(32, count=5))
    exact = SparseViewCT(32, 8, dtype=torch.float64)
    expected = exact.fbp(exact.project(images))
    torch.testing.assert_close(exact.sparse_view(images), expected)
    single = SparseViewCT(32, 8).sparse_view(images.float())
    assert single.dtype == torch.float32
    assert (single.double() - expected).abs().max() < 1e-4


def test_batch_rows_are_independent():
    images = torch.from_numpy(_images(24, count=4))
    operator = SparseViewCT(24, 6, dtype=torch.float64)
    whole = operator.sparse_view(images)
    one = torch.cat([operator.sparse_view(images[k:k + 1]) for k in range(4)])
    torch.testing.assert_close(whole, one)


def test_dense_matrices_reproduce_the_operators():
    operator = SparseViewCT(16, 4, dtype=torch.float64)
    projector, fbp = operator.dense_matrices()
    assert projector.shape == (4 * 16, 16 * 16) and fbp.shape == (16 * 16, 4 * 16)
    images = torch.from_numpy(_images(16, count=2))
    torch.testing.assert_close((images.reshape(2, -1) @ projector.T @ fbp.T).reshape(2, 16, 16),
                               operator.sparse_view(images))


def test_view_angles_cover_half_circle():
    np.testing.assert_allclose(view_angles(4), [0.0, 45.0, 90.0, 135.0])


@pytest.mark.parametrize(("size", "views", "message"), [
    (32, 1, "n_views"), (32, 33, "n_views"), (2, 2, "image size"), (32, 2.5, "n_views")])
def test_bad_geometry_is_rejected(size, views, message):
    with pytest.raises(ValueError, match=message):
        SparseViewCT(size, views)


def test_wrong_shapes_are_rejected():
    operator = SparseViewCT(16, 4)
    with pytest.raises(ValueError, match=r"images must be \[B, 16, 16\]"):
        operator.project(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"sinograms must be \[B, 4, 16\]"):
        operator.fbp(torch.zeros(2, 16, 4))
