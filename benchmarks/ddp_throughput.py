"""SimCLR pretraining throughput with 1 and 2 data-parallel ranks side by side, written to JSON.

Each rank count is one launch of the project's data-parallel machinery (``run_on_ranks``: the
elastic launcher inside this process, gloo on the CPU, nccl on CUDA); every rank builds the
default SimCLR model (``conf/base/parameters_pretraining.yml``: the digits CNN, batch 256) and
times full optimisation steps of the method's own loss through DDP: the global batch's views
drawn on every rank, the rank's shard encoded, the projections gathered with gradient, NT-Xent,
backward with DDP's gradient all-reduce, AdamW. Reported per rank count ``W``:

  - ddp.W<W>.samples_per_s: global-batch images per second (each gives two views);
  - ddp.W<W>.step_ms: median step time on rank 0;
  - ddp.W<W>.comm_ms: the step's collectives timed alone with the step's sizes (the forward
    all-gather of both views' projections, its backward reduce-scatter, the all-reduce of every
    parameter gradient), median; ddp.W<W>.gather_bytes / allreduce_bytes: their volume per rank;
  - ddp.W<W>.launch_s: wall time of the launch (process start, rendezvous, model build);
  - ddp.W<W>.speedup: samples/s over the one-rank samples/s. On the CPU all rank counts share
    the same cores (each rank gets cores / W threads), so the ideal there is 1, not W; on GPUs
    (one per rank) it is W.

Usage: python benchmarks/ddp_throughput.py --out benchmarks/results/ddp_throughput.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import yaml
from bench_common import machine_info, write_figures

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.data.digits import embedded_digits
from contrastive_signals.methods.two_view import TwoViewMethod, TwoViewParams
from contrastive_signals.models.registry import EncoderSpec
from contrastive_signals.signal.image_filters import normalize
from contrastive_signals.training.device import resolve_device
from contrastive_signals.training.distributed import run_on_ranks
from contrastive_signals.training.fit import FitConfig
from contrastive_signals.training.ranks import current_ranks, data_parallel_model, gather_with_grad

ROOT = Path(__file__).resolve().parents[1]


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _comm_ms(z_rows: int, z_dim: int, grad_numel: int, device: torch.device, repeats: int
             ) -> float:
    """Median ms of one step's collectives alone: gather of two ``[z_rows, z_dim]`` blocks with
    their backward, and the all-reduce of ``grad_numel`` float32 gradients."""
    import torch.distributed as dist

    z = torch.randn(z_rows, z_dim, device=device, requires_grad=True)
    flat = torch.zeros(grad_numel, device=device)
    times = []
    for _ in range(repeats):
        _synchronise(device)
        start = time.perf_counter()
        for _ in range(2):
            gather_with_grad(z).sum().backward()
        dist.all_reduce(flat)
        _synchronise(device)
        times.append(time.perf_counter() - start)
    return 1000 * _median(times)


def rank_benchmark(steps: int, warmup: int, device_name: str) -> dict[str, float]:
    """This rank's figures: median step ms, comm ms, sizes, threads."""
    params = yaml.safe_load((ROOT / "conf/base/parameters_pretraining.yml").read_text())[
        "pretraining"]["simclr"]
    device = resolve_device(device_name)
    images, labels = embedded_digits()
    images = normalize(images)
    batch_size = params["batch_size"]
    spec = from_params(EncoderSpec, params["encoder"], path="pretraining.simclr.encoder")
    method = TwoViewMethod(from_params(TwoViewParams, params["method"],
                                       path="pretraining.simclr.method"),
                           ViewAugmentation.from_params(params["augmentation"]),
                           modality="image", output=spec.entry.output)
    encoder, _ = spec.build(images.shape[1], seed=0)
    model = method.build(encoder, seed=0).to(device)
    step_model = data_parallel_model(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)  # the same on every rank: the same global batch

    def step() -> None:
        idx = torch.randint(0, len(images), (batch_size,), generator=generator)
        batch = (images[idx].to(device), labels[idx].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = method.loss(step_model, batch, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        _synchronise(device)
        start = time.perf_counter()
        step()
        _synchronise(device)
        times.append(time.perf_counter() - start)
    ranks = current_ranks()
    world = ranks.world_size
    grad_numel = sum(p.numel() for p in model.parameters())
    out_dim = params["method"]["head"]["out_dim"]
    comm = _comm_ms(batch_size // world, out_dim, grad_numel, device, steps) if world > 1 else 0.0
    return {"step_ms": 1000 * _median(times), "comm_ms": comm,
            "gather_bytes": 2 * batch_size * out_dim * 4 * (world - 1) / world,
            "allreduce_bytes": 4 * grad_numel, "threads": torch.get_num_threads(),
            "parameters": grad_numel, "batch_size": batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ddp_throughput.json")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    figures: dict[str, object] = {"ddp.device": str(device),
                                  "loadavg.before_1min": os.getloadavg()[0]}
    for world in args.ranks:
        config = FitConfig(epochs=1, learning_rate=1e-3, device=args.device, strategy="ddp",
                           devices=world)
        start = time.perf_counter()
        ranks = run_on_ranks(rank_benchmark, args.steps, args.warmup, args.device, config=config)
        launch = time.perf_counter() - start
        rank0 = ranks[0]
        key = f"ddp.W{world}"
        figures[f"{key}.step_ms"] = round(rank0["step_ms"], 2)
        figures[f"{key}.samples_per_s"] = round(rank0["batch_size"] / rank0["step_ms"] * 1000, 1)
        figures[f"{key}.comm_ms"] = round(rank0["comm_ms"], 2)
        figures[f"{key}.comm_share"] = round(rank0["comm_ms"] / rank0["step_ms"], 3)
        figures[f"{key}.gather_bytes"] = int(rank0["gather_bytes"])
        figures[f"{key}.allreduce_bytes"] = int(rank0["allreduce_bytes"])
        figures[f"{key}.threads_per_rank"] = rank0["threads"]
        figures[f"{key}.launch_s"] = round(launch, 1)
        figures["ddp.batch_size"] = rank0["batch_size"]
        figures["ddp.parameters"] = rank0["parameters"]
    base = figures.get("ddp.W1.samples_per_s")
    for world in args.ranks:
        if base:
            figures[f"ddp.W{world}.speedup"] = round(
                figures[f"ddp.W{world}.samples_per_s"] / base, 3)
    figures["loadavg.after_1min"] = os.getloadavg()[0]
    figures.update(machine_info())
    if device.type == "cuda":
        figures["machine.gpu"] = torch.cuda.get_device_name()
        figures["machine.gpus"] = torch.cuda.device_count()
    write_figures(figures, args.out)


if __name__ == "__main__":
    main()
