"""Sparse-view noise for many images: the batched Radon/FBP matrices versus scikit-image's
per-image ``radon`` + ``iradon``, side by side in one run.

Makes the FBP reconstructions from ``--views`` angles of ``--n`` random-ellipse phantoms
(64x64 by default). The batched path is timed in two parts: building the operators (once
per size and angle set) and applying them to the whole batch (projection, then FBP, as two
matrix products, in chunks); the per-image path calls ``skimage.transform.radon`` then
``iradon`` (ramp filter, linear interpolation) on every image. Both run in float64 so the
maximum absolute difference checks the operators, not float32 rounding; a float32 timing of
the batched path is reported too. Writes a flat JSON object (``batched.*``, ``skimage.*``,
``speedup``, ``max_abs_diff``, ``machine.*``, ``config.*``).

    python benchmarks/sparse_view_noise.py --out benchmarks/results/sparse_view_noise.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from skimage.transform import iradon, radon

from contrastive_signals.data.ct_phantoms import EllipseSpec, ellipse_phantoms
from contrastive_signals.signal import radon as radon_module
from contrastive_signals.signal.radon import SparseViewCT, view_angles

TARGET_SPEEDUP = 10.0


def _batched(operator: SparseViewCT, images: torch.Tensor, chunk: int) -> torch.Tensor:
    return torch.cat([operator.fbp(operator.project(images[s:s + chunk]))
                      for s in range(0, images.shape[0], chunk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--views", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sparse_view_noise.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    images64 = ellipse_phantoms(args.n, size=args.size, spec=EllipseSpec(),
                                rng=np.random.default_rng(0)).astype(np.float64)
    images = torch.from_numpy(images64)
    angles = view_angles(args.views)

    radon_module._factors.cache_clear()
    start = time.perf_counter()
    operator = SparseViewCT(args.size, args.views, dtype=torch.float64)
    build_s = time.perf_counter() - start

    _batched(operator, images[:args.chunk], args.chunk)  # warm-up (allocator, BLAS)
    start = time.perf_counter()
    batched = _batched(operator, images, args.chunk).numpy()
    batched_s = time.perf_counter() - start

    operator32 = SparseViewCT(args.size, args.views, dtype=torch.float32)
    images32 = images.float()
    start = time.perf_counter()
    _batched(operator32, images32, args.chunk)
    batched32_s = time.perf_counter() - start

    start = time.perf_counter()
    reference = np.stack([iradon(radon(image, theta=angles), theta=angles, filter_name="ramp",
                                 interpolation="linear") for image in images64])
    skimage_s = time.perf_counter() - start

    results = {
        "config.n": args.n, "config.size": args.size, "config.views": args.views,
        "config.chunk": args.chunk, "config.threads": args.threads, "config.dtype": "float64",
        "config.target_speedup": TARGET_SPEEDUP,
        "batched.build_s": round(build_s, 4),
        "batched.apply_s": round(batched_s, 4),
        "batched.apply_float32_s": round(batched32_s, 4),
        "skimage.radon_iradon_s": round(skimage_s, 4),
        "speedup": round(skimage_s / batched_s, 2),
        "speedup_float32": round(skimage_s / batched32_s, 2),
        "speedup_including_build": round(skimage_s / (batched_s + build_s), 2),
        "reaches_10x": bool(skimage_s / batched_s >= TARGET_SPEEDUP),
        "max_abs_diff": float(np.abs(batched - reference).max()),
        "max_abs_value": float(np.abs(reference).max()),
        "machine.platform": platform.platform(),
        "machine.cpu_count": os.cpu_count(),
        "machine.loadavg_1m_at_end": os.getloadavg()[0],
        "machine.torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
