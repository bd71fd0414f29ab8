"""The denoising data: clean images per data set split into train/val/test, users' folders,
held-out figure images and the sparse-view pairs."""

import numpy as np
import pytest
import torch

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.data.sparse_view_ct import (
    DataParams,
    NoiseParams,
    clean_image_splits,
    held_out_images,
    sparse_view_pairs,
)

DATA = DataParams(image_size=16, train_size=4, val_size=2, test_size=3, donor_pool=2,
                  patch_size=16)


@pytest.mark.parametrize("dataset", ["ellipses", "digits", "skimage"])
def test_builtin_data_sets_are_split_and_seeded(dataset):
    data = DataParams(**{**DATA.__dict__, "dataset": dataset})
    images = clean_image_splits(data, {})
    assert {k: tuple(v.shape) for k, v in images.items()} == {
        "train": (4, 16, 16), "val": (2, 16, 16), "test": (3, 16, 16)}
    assert all(v.dtype == torch.float32 and 0 <= v.min() and v.max() <= 1
               for v in images.values())
    again = clean_image_splits(data, {})
    for part in images:
        torch.testing.assert_close(images[part], again[part])


def test_held_out_images_differ_from_the_training_images():
    held_out = held_out_images(DATA, ["ellipses", "digits"], 2, {})
    assert {k: tuple(v.shape) for k, v in held_out.items()} == {
        "ellipses": (2, 16, 16), "digits": (2, 16, 16)}
    assert not torch.equal(held_out["ellipses"], clean_image_splits(DATA, {})["train"][:2])


def _folder(images):
    return {"mine": {f"{k:03d}.png": image for k, image in enumerate(images)}}


def test_user_folder_is_split_after_a_seeded_shuffle():
    data = DataParams(**{**DATA.__dict__, "dataset": "folder:mine"})
    rng = np.random.default_rng(0)
    images = clean_image_splits(data, _folder([rng.random((20, 20)) for _ in range(9)]))
    assert {k: v.shape[0] for k, v in images.items()} == {"train": 4, "val": 2, "test": 3}
    with pytest.raises(ValueError, match=r"holds 6 images; need at least 7"):
        clean_image_splits(data, _folder([rng.random((20, 20)) for _ in range(6)]))


@pytest.mark.parametrize(("folders", "message"), [
    ({"mine": {}}, r"data/01_raw/images/mine/: the folder holds no PNG/JPEG/TIFF images"),
    ({}, r"data/01_raw/images/mine/: no such image folder"),
    (_folder([np.zeros((8, 8))] * 3 + [np.zeros((9, 8))] * 4), "mixed sizes"),
    (_folder([np.zeros((8, 8))] * 6 + [np.full((8, 8), np.inf)]), "non-finite"),
])
def test_bad_image_folders_are_named(folders, message):
    data = DataParams(**{**DATA.__dict__, "dataset": "folder:mine"})
    with pytest.raises(ValueError, match=message):
        clean_image_splits(data, folders)


@pytest.mark.parametrize(("cls", "values", "message"), [
    (DataParams, {"dataset": "mnist"}, r"data: dataset must be one of"),
    (DataParams, {"donor_pool": 3000}, r"data: donor_pool \(3000\) must be <= train_size"),
    (DataParams, {"sample_images": ["cat"]}, r"data: sample_images must be a non-empty subset"),
    (NoiseParams, {"views": []}, r"noise: views and train_views must be non-empty"),
])
def test_bad_data_parameters_are_named(cls, values, message):
    with pytest.raises(ParameterError, match=message):
        from_params(cls, values, path=cls.__name__.removesuffix("Params").lower())


def test_pairs_hold_the_fbp_of_each_view_count():
    clean = clean_image_splits(DATA, {})
    pairs = sparse_view_pairs(clean, size=16, views=(4, 8), train_views=(8,), device="cpu")
    assert pairs["views"] == [4, 8] and pairs["train_views"] == [8]
    assert set(pairs["train"]["noisy"]) == {8} and set(pairs["test"]["noisy"]) == {4, 8}
    torch.testing.assert_close(pairs["test"]["clean"], clean["test"])
    assert pairs["test"]["noisy"][4].shape == (3, 16, 16)
    error = {v: (pairs["test"]["noisy"][v] - clean["test"]).abs().mean() for v in (4, 8)}
    assert error[8] < error[4]  # more views, less streaks


def test_non_finite_or_mis_sized_images_are_rejected():
    good = torch.zeros(4, 32, 32)
    with pytest.raises(ValueError, match="train images hold non-finite"):
        sparse_view_pairs({"train": torch.full((4, 32, 32), float("nan"))}, size=32,
                          views=(8,), train_views=(8,), device="cpu")
    with pytest.raises(ValueError, match=r"val images must be \[M, 32, 32\]"):
        sparse_view_pairs({"train": good, "val": torch.zeros(4, 16, 16)}, size=32, views=(8,),
                          train_views=(8,), device="cpu")
