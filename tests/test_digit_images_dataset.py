import pytest
from kedro.io.core import DatasetError

from contrastive_signals.data.digits import MissingDataError
from contrastive_signals.io.digit_images_dataset import DigitImagesDataset
from tests.data.test_digits import make_fake_mnist


def test_embedded_source_needs_no_files(tmp_path):
    data = DigitImagesDataset(source="digits", folder=str(tmp_path)).load()
    assert data["images"].shape == (1797, 1, 28, 28) and data["source"] == "digits"


def test_mnist_source_reads_idx_files_through_the_real_reader(tmp_path):
    make_fake_mnist(tmp_path)
    data = DigitImagesDataset(source="mnist", folder=str(tmp_path)).load()
    assert data["images"].shape == (20, 1, 28, 28) and data["source"] == "mnist"


def test_mnist_source_without_files_names_folder_and_never_downloads(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not download by default")

    monkeypatch.setattr("contrastive_signals.io.digit_images_dataset.download_mnist", no_download)
    with pytest.raises(DatasetError, match=str(tmp_path)) as error:
        DigitImagesDataset(source="mnist", folder=str(tmp_path)).load()
    assert isinstance(error.value.__cause__, MissingDataError)
    assert "train-images-idx3-ubyte" in str(error.value)


def test_unknown_source_and_save_are_errors(tmp_path):
    with pytest.raises(DatasetError, match="source must be one of"):
        DigitImagesDataset(source="cifar", folder=str(tmp_path))
    with pytest.raises(DatasetError, match="read-only"):
        DigitImagesDataset().save({})


def test_mnist_source_names_every_truncated_file(tmp_path):
    make_fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).write_bytes((raw / name).read_bytes()[:-28])
    with pytest.raises(DatasetError) as error:
        DigitImagesDataset(source="mnist", folder=str(tmp_path)).load()
    message = str(error.value)
    assert "2 bad MNIST IDX file(s)" in message
    assert "train-images-idx3-ubyte: header announces" in message
    assert "t10k-images-idx3-ubyte: header announces" in message
