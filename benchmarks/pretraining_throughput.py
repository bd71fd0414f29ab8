"""SimCLR pretraining throughput (images/s) and peak memory, written to JSON.

Runs the project's own `fit` loop with the default SimCLR parameters for a few epochs on
the embedded digits, on the device `auto` picks (CUDA when present), and reports:
  - pretraining.images_per_s: training images per second (each gives two views);
  - pretraining.step_ms: median time of one optimisation step;
  - pretraining.peak_rss_mb (CPU) or pretraining.peak_cuda_mb (GPU).

Usage: python benchmarks/pretraining_throughput.py --out benchmarks/results/pretraining_throughput.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch
import yaml

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.data.digits import embedded_digits
from contrastive_signals.methods.two_view import TwoViewMethod, TwoViewParams
from contrastive_signals.models.registry import EncoderSpec
from contrastive_signals.signal.image_filters import normalize
from contrastive_signals.training.device import resolve_device

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pretraining_throughput.json")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "conf/base/parameters_pretraining.yml").read_text())["pretraining"]["simclr"]
    device = resolve_device(args.device)
    images, labels = embedded_digits()
    images = normalize(images)
    batch_size = params["batch_size"]
    augmentation = ViewAugmentation.from_params(params["augmentation"])
    spec = from_params(EncoderSpec, params["encoder"], path="pretraining.simclr.encoder")
    method = TwoViewMethod(from_params(TwoViewParams, params["method"],
                                       path="pretraining.simclr.method"),
                           augmentation, modality="image", output=spec.entry.output)
    encoder, _ = spec.build(images.shape[1], seed=0)
    model = method.build(encoder, seed=0).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    host = images.pin_memory() if device.type == "cuda" else images
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step() -> None:
        idx = torch.randint(0, len(host), (batch_size,), generator=generator)
        batch = (host[idx].to(device, non_blocking=True), labels[idx].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = method.loss(model, batch, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    figures = {
        "pretraining.device": str(device),
        "pretraining.batch_size": batch_size,
        "pretraining.step_ms": 1000 * median,
        "pretraining.images_per_s": batch_size / median,
        "pretraining.views_per_s": 2 * batch_size / median,
        "pretraining.peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pretraining.rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
        "machine.torch": torch.__version__,
        "machine.threads": torch.get_num_threads(),
        "machine.cpu": platform.processor() or platform.machine(),
    }
    if device.type == "cuda":
        figures["pretraining.peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        figures["machine.gpu"] = torch.cuda.get_device_name()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
