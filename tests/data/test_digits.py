import gzip

import numpy as np
import pytest
import torch

from contrastive_signals.data.digits import (
    IdxFilesError,
    MissingDataError,
    embedded_digits,
    mnist_from_idx,
    read_idx,
)
from contrastive_signals.data.splits import stratified_split_indices
from contrastive_signals.data.validation import MalformedDataError, validate_labelled_images


def write_idx(path, array: np.ndarray, *, gz: bool = False) -> None:
    """Write ``array`` (uint8) in LeCun's IDX format: magic 0x0000 08 <ndim>, big-endian dims."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def make_fake_mnist(folder, n_train=12, n_test=8, *, gz=False):
    rng = np.random.default_rng(0)
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz=gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz=gz)


def test_embedded_digits_shape_and_range():
    images, labels = embedded_digits()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(labels.tolist()) == set(range(10))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_roundtrip_through_reader(tmp_path, gz):
    make_fake_mnist(tmp_path, gz=gz)
    images, labels = mnist_from_idx(tmp_path)
    assert images.shape == (20, 1, 28, 28)
    assert labels.tolist() == [i % 10 for i in range(12)] + [i % 10 for i in range(8)]
    assert images.max() <= 1.0


def test_missing_mnist_files_name_folder_and_files(tmp_path):
    with pytest.raises(MissingDataError) as error:
        mnist_from_idx(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "bad-idx"
    write_idx(path, np.zeros((3, 28, 28)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="bad-idx"):
        read_idx(path)


def test_every_bad_idx_file_of_a_folder_is_named_in_one_error(tmp_path):
    make_fake_mnist(tmp_path, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    train_images = raw / "train-images-idx3-ubyte.gz"           # truncated gzip stream
    train_images.write_bytes(train_images.read_bytes()[:40])
    train_labels = raw / "train-labels-idx1-ubyte.gz"           # not gzip at all
    train_labels.write_bytes(b"plain bytes")
    test_images = raw / "t10k-images-idx3-ubyte.gz"             # data cut short inside the gzip
    with gzip.open(test_images) as handle:
        payload = handle.read()
    with gzip.open(test_images, "wb") as handle:
        handle.write(payload[:-100])
    with pytest.raises(IdxFilesError) as error:
        mnist_from_idx(tmp_path)
    assert sorted(file for file, _ in error.value.problems) == sorted(
        str(p) for p in (train_images, train_labels, test_images))
    message = str(error.value)
    assert message.startswith(f"3 bad MNIST IDX file(s) in {tmp_path}:")
    assert "t10k-images-idx3-ubyte.gz: header announces shape (8, 28, 28)" in message
    assert "t10k-labels" not in message


def test_missing_and_unreadable_idx_files_are_named_together(tmp_path):
    make_fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(MissingDataError) as error:
        mnist_from_idx(tmp_path)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte: not found in" in message
    assert "train-images-idx3-ubyte: not an IDX file" in message
    assert "digits_download=true" in message


def test_images_and_labels_of_different_lengths_are_named(tmp_path):
    make_fake_mnist(tmp_path)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.arange(5))
    with pytest.raises(IdxFilesError, match="t10k-labels-idx1-ubyte: 5 labels but "
                                            "t10k-images-idx3-ubyte holds 8 images"):
        mnist_from_idx(tmp_path)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.zeros(4, 28, 28), torch.zeros(4, dtype=torch.long), "shape"),
        (torch.zeros(4, 1, 28, 28), torch.zeros(3, dtype=torch.long), "lengths must match"),
        (torch.full((2, 1, 28, 28), float("nan")), torch.zeros(2, dtype=torch.long), "NaN"),
        (torch.zeros(2, 1, 28, 28), torch.tensor([0, 10]), r"\[0, 9\]"),
        (torch.zeros(2, 1, 28, 28), torch.tensor([-1, 3]), r"\[0, 9\]"),
        (torch.zeros(2, 1, 28, 28), torch.tensor([0.0, 1.0]), "integers"),
    ],
)
def test_malformed_images_name_the_dataset(images, labels, match):
    with pytest.raises(MalformedDataError, match=match) as error:
        validate_labelled_images(images, labels, num_classes=10, name="my digits")
    assert "my digits" in str(error.value)


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), 50)
    first = stratified_split_indices(labels, val_fraction=0.1, test_fraction=0.2, seed=3)
    again = stratified_split_indices(labels, val_fraction=0.1, test_fraction=0.2, seed=3)
    other = stratified_split_indices(labels, val_fraction=0.1, test_fraction=0.2, seed=4)
    all_idx = np.concatenate(list(first.values()))
    assert len(all_idx) == len(labels) == len(set(all_idx))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["test"], other["test"])
    assert np.all(np.bincount(labels[first["test"]]) == 10)
    assert np.all(np.bincount(labels[first["val"]]) == 5)


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split_indices(np.zeros(10), val_fraction=0.5, test_fraction=0.6, seed=0)
