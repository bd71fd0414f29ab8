"""A Kedro dataset for tensors and model bundles saved with ``torch.save``.

kedro-datasets has no PyTorch dataset. This one adds what model files need: versioning
(an existing version is never overwritten), atomic writes (a temporary file renamed into
place, so a crash never leaves a half-written model), and loading with
``weights_only=True`` (no arbitrary code runs when a file is opened).
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write ``obj`` to ``path`` via a temporary sibling file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600 files; give the final file the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    try:
        with os.fdopen(handle, "wb") as tmp_file:
            torch.save(obj, tmp_file)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class TorchDataset(AbstractVersionedDataset[Any, Any]):
    """Tensors, dicts of tensors and model bundles on the local filesystem.

    Example catalog entry::

        simclr_encoder:
          type: contrastive_signals.io.torch_dataset.TorchDataset
          filepath: data/06_models/simclr_encoder.pt
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            filepath=PurePosixPath(Path(filepath).as_posix()),
            version=version,
            exists_function=lambda p: Path(p).is_file(),
            glob_function=lambda pattern: sorted(glob.glob(pattern)),
        )
        self.metadata = metadata
        self.last_saved_path: Path | None = None

    def load(self) -> Any:
        path = Path(self._get_load_path())
        if not path.is_file():
            raise DatasetError(
                f"No file at '{path}'. Run the pipeline that produces it first "
                f"(expected a torch.save file written by this project)."
            )
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for corrupt files
            raise DatasetError(f"Could not read '{path}' as a torch file: {error}") from error

    def save(self, data: Any) -> None:
        path = Path(self._get_save_path())
        atomic_torch_save(data, path)
        self.last_saved_path = path

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return Path(path).is_file()
