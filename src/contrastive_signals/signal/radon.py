"""Parallel-beam Radon projection and ramp-filtered back-projection (FBP) as matrices.

Both operators are built once per ``(size, n_views)`` with the same conventions as
scikit-image's ``radon``/``iradon`` (``circle=True``, bilinear rotation, ramp filter, linear
back-projection interpolation), then applied to whole batches as matrix products (sparse
projector, dense ramp filter, sparse back-projection) on whatever device the matrices live on. Sparse-view streak artefacts are
``fbp(project(image))`` with few angles.

Shapes: images ``[B, N, N]``, sinograms ``[B, V, N]`` (angle first; scikit-image returns the
transpose ``[N, V]`` per image).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import scipy.sparse
import torch
from torch import Tensor


def view_angles(n_views: int) -> np.ndarray:
    """``n_views`` equally spaced angles over [0, 180) degrees -> ``[V]`` float64."""
    return np.arange(n_views, dtype=np.float64) * (180.0 / n_views)


def check_geometry(size: int, n_views: int) -> None:
    """Raise ``ValueError`` unless ``2 <= n_views <= size`` and ``size >= 4``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise ValueError(f"image size must be an integer >= 4, got {size!r}")
    if isinstance(n_views, bool) or not isinstance(n_views, int) or not 2 <= n_views <= size:
        raise ValueError(
            f"n_views must be an integer in [2, image size = {size}], got {n_views!r}")


def circle_mask(size: int) -> np.ndarray:
    """``[N, N]`` bool, True inside scikit-image's reconstruction circle (radius ``N // 2``
    about pixel ``N // 2``)."""
    rows, cols = np.ogrid[:size, :size]
    centre, radius = size // 2, size // 2
    return (rows - centre) ** 2 + (cols - centre) ** 2 <= radius**2


def _projection_matrix(size: int, angles_deg: np.ndarray) -> scipy.sparse.csr_array:
    """``[V * N, N * N]`` sparse: row ``v * N + d`` sums, over the rows of the image rotated
    by angle ``v`` (bilinear, zero outside), the column ``d`` - scikit-image's ``radon``."""
    n = size
    centre = n // 2
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")  # output pixel grid
    out_rows, in_index, weights = [], [], []
    for v, angle in enumerate(np.deg2rad(angles_deg)):
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        # warp's inverse map (x = column, y = row), as in skimage.transform.radon.
        x = cos_a * cols + sin_a * rows - centre * (cos_a + sin_a - 1)
        y = -sin_a * cols + cos_a * rows - centre * (cos_a - sin_a - 1)
        r0, c0 = np.floor(y), np.floor(x)
        dr, dc = y - r0, x - c0
        for rr, cc, w in ((r0, c0, (1 - dr) * (1 - dc)), (r0, c0 + 1, (1 - dr) * dc),
                          (r0 + 1, c0, dr * (1 - dc)), (r0 + 1, c0 + 1, dr * dc)):
            inside = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n) & (w != 0)
            out_rows.append(v * n + cols[inside])  # detector bin = output column
            in_index.append((rr[inside] * n + cc[inside]).astype(np.int64))
            weights.append(w[inside])
    coo = scipy.sparse.coo_array(
        (np.concatenate(weights), (np.concatenate(out_rows), np.concatenate(in_index))),
        shape=(len(angles_deg) * n, n * n))
    return coo.tocsr()  # duplicates summed


def _ramp_filter(padded: int) -> np.ndarray:
    """scikit-image's ramp filter in the Fourier domain, ``[P]``."""
    half = np.concatenate((np.arange(1, padded / 2 + 1, 2, dtype=int),
                           np.arange(padded / 2 - 1, 0, -2, dtype=int)))
    f = np.zeros(padded)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * half) ** 2
    return 2 * np.real(np.fft.fft(f))


def _fbp_factors(size: int, angles_deg: np.ndarray) -> tuple[np.ndarray, scipy.sparse.csr_array]:
    """scikit-image's ``iradon`` (ramp filter, linear interpolation, ``circle=True``) as two
    factors: the ramp filter ``[D, N]`` (detector bins -> filtered bins of the sinogram
    zero-padded to the diagonal ``D``, the same for every angle) and the sparse
    back-projection ``[N * N, V * D]`` (linear interpolation, circle mask and the
    ``pi / (2 V)`` scale)."""
    n = size
    diagonal = int(np.ceil(np.sqrt(2) * n))  # iradon pads the sinogram to the diagonal
    pad_before = diagonal // 2 - n // 2
    padded = max(64, int(2 ** np.ceil(np.log2(2 * diagonal))))
    basis = np.zeros((padded, n))
    basis[pad_before + np.arange(n), np.arange(n)] = 1.0
    filtered = np.real(np.fft.ifft(np.fft.fft(basis, axis=0) * _ramp_filter(padded)[:, None],
                                   axis=0))[:diagonal]  # [D, n]
    radius = n // 2
    xpr, ypr = np.mgrid[:n, :n] - radius
    inside = (xpr**2 + ypr**2 <= radius**2).ravel()
    pixels = np.arange(n * n)
    rows, cols, weights = [], [], []
    for v, angle in enumerate(np.deg2rad(angles_deg)):
        t = (ypr * np.cos(angle) - xpr * np.sin(angle)).ravel() + diagonal // 2  # bin index
        lo = np.floor(t).astype(np.int64)
        frac = t - lo
        for idx, w in ((lo, 1 - frac), (lo + 1, frac)):  # np.interp with left=right=0
            ok = inside & (idx >= 0) & (idx < diagonal) & (t >= 0) & (t <= diagonal - 1) & (w != 0)
            rows.append(pixels[ok])
            cols.append(v * diagonal + idx[ok])
            weights.append(w[ok])
    scale = np.pi / (2 * len(angles_deg))
    back = scipy.sparse.coo_array(
        (np.concatenate(weights) * scale, (np.concatenate(rows), np.concatenate(cols))),
        shape=(n * n, len(angles_deg) * diagonal)).tocsr()
    return filtered, back


@lru_cache(maxsize=16)
def _factors(size: int, n_views: int
             ) -> tuple[scipy.sparse.csr_array, np.ndarray, scipy.sparse.csr_array]:
    angles = view_angles(n_views)
    return (_projection_matrix(size, angles), *_fbp_factors(size, angles))


def _torch_csr(matrix: scipy.sparse.csr_array, dtype: torch.dtype, device) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": used as documented
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data), size=matrix.shape, dtype=dtype, device=device,
            check_invariants=True)


class SparseViewCT:
    """Radon projector and FBP for ``N x N`` images at ``V`` angles, as matrices: a sparse
    projector (4 bilinear weights per ray sample), a dense ramp filter shared by all angles and
    a sparse back-projection (2 linear weights per pixel and angle).

    Args:
        size: image side ``N``.
        n_views: number of projection angles ``V``, ``2 <= V <= N``, equally spaced over
            [0, 180) degrees.
        dtype, device: where the matrices live (float64 reproduces scikit-image to ~1e-12).
    """

    def __init__(self, size: int, n_views: int, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        check_geometry(size, n_views)
        self.size, self.n_views = size, n_views
        projection, ramp, back = _factors(size, n_views)
        self.detector_padded = ramp.shape[0]
        self.projection = _torch_csr(projection, dtype, device)  # [V*N, N*N] sparse
        self.ramp = torch.as_tensor(ramp, dtype=dtype, device=device)  # [D, N]
        self.backprojection = _torch_csr(back, dtype, device)  # [N*N, V*D] sparse

    def dense_matrices(self) -> tuple[Tensor, Tensor]:
        """The projector ``[V*N, N*N]`` and the whole FBP ``[N*N, V*N]`` as dense matrices
        (for inspection and tests; the batched methods use the sparse factors)."""
        eye = torch.eye(self.size * self.size, dtype=self.ramp.dtype, device=self.ramp.device)
        projector = self.project(eye.reshape(-1, self.size, self.size)).reshape(
            self.size * self.size, -1).T
        eye = torch.eye(self.n_views * self.size, dtype=self.ramp.dtype, device=self.ramp.device)
        fbp = self.fbp(eye.reshape(-1, self.n_views, self.size)).reshape(
            self.n_views * self.size, -1).T
        return projector, fbp

    def _check_images(self, images: Tensor) -> Tensor:
        if images.ndim != 3 or images.shape[1:] != (self.size, self.size):
            raise ValueError(f"images must be [B, {self.size}, {self.size}], got "
                             f"{tuple(images.shape)}")
        return images.reshape(images.shape[0], -1).to(self.ramp)

    def project(self, images: Tensor) -> Tensor:
        """``[B, N, N]`` -> sinograms ``[B, V, N]``."""
        columns = self._check_images(images).T  # [N*N, B]
        return (self.projection @ columns).T.reshape(-1, self.n_views, self.size)

    def fbp(self, sinograms: Tensor) -> Tensor:
        """Sinograms ``[B, V, N]`` -> ramp-filtered back-projections ``[B, N, N]``."""
        if sinograms.ndim != 3 or sinograms.shape[1:] != (self.n_views, self.size):
            raise ValueError(f"sinograms must be [B, {self.n_views}, {self.size}], got "
                             f"{tuple(sinograms.shape)}")
        by_angle = sinograms.to(self.ramp).permute(1, 2, 0).contiguous()  # [V, N, B]
        filtered = (self.ramp @ by_angle).reshape(self.n_views * self.detector_padded, -1)
        return (self.backprojection @ filtered).T.reshape(-1, self.size, self.size)

    def sparse_view(self, images: Tensor) -> Tensor:
        """``[B, N, N]`` -> their FBP reconstructions from ``V`` views ``[B, N, N]``."""
        return self.fbp(self.project(images))
