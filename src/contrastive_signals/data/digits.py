"""Digit images: scikit-learn's embedded 8x8 digits and MNIST's IDX files.

Both paths return the same thing: float32 images ``[N, 1, 28, 28]`` in [0, 1] and int64
labels ``[N]``, so the classic MNIST architectures apply unchanged.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from contrastive_signals.data.bad_files import BadFilesError, read_each

IMAGE_SIZE = 28
NUM_CLASSES = 10

# torchvision's raw layout: data/01_raw/mnist/MNIST/raw/<name> (also accepted flat in the folder).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MissingDataError(FileNotFoundError):
    """Raised when input files are absent; the message names the folder and the files expected."""


def embedded_digits(image_size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits, resized to ``image_size`` and scaled to [0, 1].

    Returns:
        images ``[1797, 1, image_size, image_size]`` float32, labels ``[1797]`` int64.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    # Bilinear upsampling with antialiasing keeps stroke shapes smooth at 28x28.
    images = F.interpolate(small, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0), torch.from_numpy(bunch.target.astype(np.int64))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), the format of LeCun's MNIST distribution."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({expected} bytes) "
            f"but the file holds {len(raw) - header_end} bytes of data"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)


def _find_idx_file(folder: Path, name: str) -> Path | None:
    for candidate_dir in (folder / "MNIST" / "raw", folder):
        for suffix in ("", ".gz"):
            path = candidate_dir / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


class IdxFilesError(BadFilesError):
    """One or more MNIST IDX files are unreadable; the message names every one."""

    kind = "MNIST IDX"


def mnist_from_idx(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read MNIST's four IDX files from ``folder`` (torchvision's layout or flat).

    Returns:
        images ``[70000, 1, 28, 28]`` float32 in [0, 1] (train then test), labels ``[70000]``.

    Raises:
        MissingDataError: naming the folder and every file that is missing (and every file
            present but unreadable).
        IdxFilesError: naming every unreadable file (bad magic number, truncated, broken
            gzip) and every images/labels pair of different lengths.
    """
    names = [name for pair in MNIST_FILES.values() for name in pair]
    found = {name: _find_idx_file(folder, name) for name in names}
    missing = [(name, f"not found in '{folder / 'MNIST' / 'raw'}' or '{folder}' (optionally .gz)")
               for name, path in found.items() if path is None]
    try:
        arrays = read_each([(str(path), path) for path in found.values() if path is not None],
                           read_idx, error=IdxFilesError, problems=missing, folder=folder)
    except IdxFilesError as error:
        if missing:
            raise MissingDataError(
                f"{error}\nPlace torchvision's MNIST raw files there, run with --params "
                "digits_download=true on a machine with network, or use the embedded digits "
                "(digits_source=digits).") from None
        raise
    read = dict(zip(names, arrays, strict=True))
    mismatched = [(str(found[labels]), f"{len(read[labels])} labels but {found[images].name} "
                                       f"holds {len(read[images])} images")
                  for images, labels in MNIST_FILES.values()
                  if len(read[images]) != len(read[labels])]
    if mismatched:
        raise IdxFilesError(mismatched, folder=folder)
    image_array = np.concatenate([read[images] for images, _ in MNIST_FILES.values()])
    label_array = np.concatenate([read[labels] for _, labels in MNIST_FILES.values()])
    return (torch.from_numpy(image_array.astype(np.float32) / 255.0).unsqueeze(1),
            torch.from_numpy(label_array.astype(np.int64)))


def download_mnist(folder: Path) -> None:
    """Fetch MNIST with torchvision into ``folder`` (only when the user sets ``download: true``)."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(root=str(folder), train=train, download=True)
