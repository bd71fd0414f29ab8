import numpy as np
import pytest
from kedro.io import DatasetError
from skimage import io

from contrastive_signals.io.image_folder_dataset import ImageFoldersDataset


def test_reads_png_jpeg_tiff_and_colour_as_grey(tmp_path):
    folder = tmp_path / "images" / "mine"
    folder.mkdir(parents=True)
    grey = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    io.imsave(folder / "a.png", grey, check_contrast=False)
    io.imsave(folder / "b.tif", grey.astype(np.float32) / 255.0, check_contrast=False)
    io.imsave(folder / "c.jpg", np.stack([grey] * 3, axis=-1), check_contrast=False)
    (folder / "notes.txt").write_text("not an image")
    (tmp_path / "images" / "empty").mkdir()
    loaded = ImageFoldersDataset(path=str(tmp_path / "images")).load()
    assert set(loaded) == {"mine", "empty"} and loaded["empty"] == {}
    assert sorted(loaded["mine"]) == ["a.png", "b.tif", "c.jpg"]
    np.testing.assert_allclose(loaded["mine"]["a.png"], grey / 255.0)
    np.testing.assert_allclose(loaded["mine"]["b.tif"], grey / 255.0, atol=1e-6)
    assert loaded["mine"]["c.jpg"].shape == (8, 8)
    np.testing.assert_allclose(loaded["mine"]["c.jpg"], grey / 255.0, atol=0.05)


def test_missing_root_loads_empty_and_save_is_refused(tmp_path):
    dataset = ImageFoldersDataset(path=str(tmp_path / "nothing"))
    assert dataset.load() == {}
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save({})


def test_unreadable_image_names_the_file(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="broken.png"):
        ImageFoldersDataset(path=str(tmp_path)).load()


def test_every_unreadable_image_is_named_in_one_error(tmp_path):
    for folder, name, content in (("a", "broken.png", b"not a png"), ("b", "cut.tif", b"II*\x00"),
                                  ("b", "empty.jpg", b"")):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_bytes(content)
    io.imsave(tmp_path / "b" / "fine.png", np.zeros((4, 4), np.uint8), check_contrast=False)
    with pytest.raises(DatasetError) as error:
        ImageFoldersDataset(path=str(tmp_path)).load()
    message = str(error.value)
    assert message.startswith(f"3 bad image file(s) in {tmp_path}:")
    for name in ("a/broken.png", "b/cut.tif", "b/empty.jpg"):
        assert f"  - {tmp_path / name}: " in message, name
    assert "fine.png" not in message
