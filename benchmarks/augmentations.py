"""Throughput of ViewAugmentation.two_views: one batched call vs a loop over single images.

Both paths run the same functions with the same settings; the loop feeds them ``[1, C, H, W]``
slices, which is what a per-image (torchvision-style) pipeline costs. Writes a flat JSON of
name -> number, e.g.::

    python benchmarks/augmentations.py --out benchmarks/results/augmentations.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from contrastive_signals.augment.images import ViewAugmentation


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/augmentations.json"))
    parser.add_argument("--num-images", type=int, default=2048)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, or auto")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the batched path")
    parser.add_argument("--loop-repeats", type=int, default=1, help="timed runs of the loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads for both paths (0 keeps torch's default). One thread is how "
        "DataLoader workers run, and it keeps OpenMP hand-offs, which dominate tiny per-image "
        "ops on a busy machine, from inflating the loop's time",
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    data_gen = torch.Generator().manual_seed(args.seed)
    images = torch.rand(
        args.num_images, 1, args.image_size, args.image_size, generator=data_gen
    ).to(device)
    # Every op on: blur and noise always applied, so the loop does not skip work by chance.
    augment = ViewAugmentation(blur_p=1.0, noise_p=1.0, noise_std=0.1)

    def batched() -> None:
        augment.two_views(images, generator=torch.Generator().manual_seed(args.seed))

    def looped() -> None:
        generator = torch.Generator().manual_seed(args.seed)
        for i in range(images.shape[0]):
            augment.two_views(images[i : i + 1], generator=generator)

    batched_s = _time(batched, device, args.repeats)
    looped_s = _time(looped, device, args.loop_repeats)
    prefix = f"augment.two_views.{device.type}"
    figures = {
        f"{prefix}.num_images": args.num_images,
        f"{prefix}.image_size": args.image_size,
        f"{prefix}.torch_threads": torch.get_num_threads(),
        f"{prefix}.batched.seconds": batched_s,
        f"{prefix}.batched.images_per_s": args.num_images / batched_s,
        f"{prefix}.loop.seconds": looped_s,
        f"{prefix}.loop.images_per_s": args.num_images / looped_s,
        f"{prefix}.speedup": looped_s / batched_s,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
