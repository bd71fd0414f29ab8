import pytest
import torch
from kedro.io.core import DatasetError, Version

from contrastive_signals.io.torch_dataset import TorchDataset, atomic_torch_save


def test_versioned_save_never_overwrites(tmp_path):
    path = tmp_path / "model.pt"
    first = TorchDataset(filepath=str(path), version=Version(None, "2026-01-01T00.00.00.000Z"))
    first.save({"w": torch.ones(2)})
    again = TorchDataset(filepath=str(path), version=Version(None, "2026-01-01T00.00.00.000Z"))
    with pytest.raises(DatasetError):
        again.save({"w": torch.zeros(2)})
    assert torch.equal(first.load()["w"], torch.ones(2))


def test_load_uses_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.pt"
    torch.save({"payload": Evil()}, path)
    with pytest.raises(DatasetError, match="Could not read"):
        TorchDataset(filepath=str(path)).load()


def test_failed_write_leaves_no_partial_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    path = tmp_path / "model.pt"
    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"x": Unpicklable()}, path)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match="missing.pt"):
        TorchDataset(filepath=str(tmp_path / "missing.pt")).load()
