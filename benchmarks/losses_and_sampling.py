"""Benchmark our losses and triplet sampling against pytorch-metric-learning and a loop.

Measures side by side in one run (warm-up, then the median of several repeats, torch's
thread count left as is):

* ``triplet_sampling``: ``offline_triplets`` vs the per-item ``rejection_loop_triplets``
  on 60,000 labels of 10 classes (the MNIST training set's size);
* ``ntxent``, ``supcon``, ``pair_contrastive``, ``triplet_batch_hard``: forward + backward
  of our loss vs PML's on the same tensors.

Usage::

    python benchmarks/losses_and_sampling.py --out benchmarks/results/losses_and_sampling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytorch_metric_learning
import torch
from pytorch_metric_learning import distances, losses, miners, reducers

from contrastive_signals.data.triplet_sampling import offline_triplets, rejection_loop_triplets
from contrastive_signals.losses import (
    mined_triplet_loss,
    nt_xent_loss,
    pair_contrastive_loss,
    supervised_contrastive_loss,
)


def _calibrate(fn: Callable[[], object], *, warmup: int, target_s: float) -> int:
    """Warm ``fn`` up and return how many calls make one timed repeat last ~``target_s``."""
    elapsed = 0.0
    for _ in range(max(1, warmup)):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if elapsed > 1.0:  # one warm-up call is enough for a slow function
            break
    return max(1, round(target_s / max(elapsed, 1e-9)))


def _timed(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare_seconds(
    fns: dict[str, Callable[[], object]], *, warmup: int, repeats: int, target_s: float
) -> dict[str, float]:
    """Median seconds per call of each function, repeats interleaved.

    Each repeat times every function once, in turn, so that drifting machine load (a
    shared CI box) hits all of them alike; a repeat is a burst of calls lasting about
    ``target_s`` so that sub-millisecond functions are not timed at clock resolution.
    """
    calls = {name: _calibrate(fn, warmup=warmup, target_s=target_s) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn, calls[name]))
    return {name: statistics.median(ts) for name, ts in times.items()}


def forward_backward(
    loss_fn: Callable[..., torch.Tensor], *leaves: torch.Tensor
) -> Callable[[], None]:
    """A closure running ``loss_fn(*leaves).backward()`` with fresh gradients."""

    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        loss_fn(*leaves).backward()

    return step


def bench_sampling(args: argparse.Namespace) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (args.n_labels,), generator=g)
    rng = np.random.default_rng(0)
    secs = compare_seconds(
        {
            "vectorised": lambda: offline_triplets(labels, generator=g),
            "loop": lambda: rejection_loop_triplets(labels, rng=rng),
        },
        warmup=args.warmup,
        repeats=args.repeats,
        target_s=args.target_s,
    )
    vec, loop = secs["vectorised"], secs["loop"]
    return {
        "triplet_sampling.n_labels": args.n_labels,
        "triplet_sampling.vectorised_s": vec,
        "triplet_sampling.loop_s": loop,
        "triplet_sampling.speedup": loop / vec,
    }


def bench_pair(
    name: str,
    ours: Callable[[], None],
    pml: Callable[[], None],
    args: argparse.Namespace,
) -> dict[str, float]:
    secs = compare_seconds(
        {"ours": ours, "pml": pml}, warmup=args.warmup, repeats=args.repeats, target_s=args.target_s
    )
    o, p = secs["ours"], secs["pml"]
    return {f"{name}.ours_s": o, f"{name}.pml_s": p, f"{name}.pml_over_ours": p / o}


def bench_losses(args: argparse.Namespace) -> dict[str, float]:
    g = torch.Generator().manual_seed(1)
    out: dict[str, float] = {}

    b, d, t = args.ntxent_batch, args.ntxent_dim, 0.5
    z_a = torch.randn(b, d, generator=g, requires_grad=True)
    z_b = torch.randn(b, d, generator=g, requires_grad=True)
    z = torch.cat([z_a, z_b]).detach().requires_grad_()
    pair_labels = torch.arange(b).repeat(2)
    pml_ntxent = losses.NTXentLoss(temperature=t)
    out |= bench_pair(
        "ntxent",
        forward_backward(lambda x, y: nt_xent_loss(x, y, temperature=t), z_a, z_b),
        forward_backward(lambda x: pml_ntxent(x, pair_labels), z),
        args,
    )
    out |= {"ntxent.batch": b, "ntxent.dim": d}

    n, d, c = args.triplet_n, args.triplet_dim, args.triplet_classes
    labels = torch.randint(0, c, (n,), generator=g)
    x = (torch.randn(c, d, generator=g)[labels] + torch.randn(n, d, generator=g)).requires_grad_()
    x_pml = x.detach().clone().requires_grad_()

    pml_supcon = losses.SupConLoss(temperature=t)
    out |= bench_pair(
        "supcon",
        forward_backward(lambda e: supervised_contrastive_loss(e, labels, temperature=t), x),
        forward_backward(lambda e: pml_supcon(e, labels), x_pml),
        args,
    )

    raw = distances.LpDistance(normalize_embeddings=False)
    # squared=False is the form PML implements (its per-pair terms; reductions differ).
    pml_contrastive = losses.ContrastiveLoss(
        pos_margin=0, neg_margin=1.0, distance=raw, reducer=reducers.MeanReducer()
    )
    out |= bench_pair(
        "pair_contrastive",
        forward_backward(lambda e: pair_contrastive_loss(e, labels, margin=1.0, squared=False), x),
        forward_backward(lambda e: pml_contrastive(e, labels), x_pml),
        args,
    )

    margin = 0.2
    pml_miner = miners.BatchHardMiner(distance=raw)
    pml_triplet = losses.TripletMarginLoss(
        margin=margin, distance=raw, reducer=reducers.MeanReducer()
    )
    out |= bench_pair(
        "triplet_batch_hard",
        forward_backward(
            lambda e: mined_triplet_loss(e, labels, margin=margin, mining="batch_hard"), x
        ),
        forward_backward(lambda e: pml_triplet(e, labels, pml_miner(e, labels)), x_pml),
        args,
    )
    out |= {"triplet_batch_hard.n": n, "triplet_batch_hard.dim": d, "triplet_batch_hard.classes": c}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/losses_and_sampling.json")
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target-s", type=float, default=0.2, help="length of one timed repeat")
    parser.add_argument("--n-labels", type=int, default=60_000)
    parser.add_argument("--ntxent-batch", type=int, default=256)
    parser.add_argument("--ntxent-dim", type=int, default=128)
    parser.add_argument("--triplet-n", type=int, default=256)
    parser.add_argument("--triplet-dim", type=int, default=64)
    parser.add_argument("--triplet-classes", type=int, default=10)
    args = parser.parse_args()

    results: dict[str, float | int | str] = {
        "machine.torch_version": torch.__version__,
        "machine.pml_version": pytorch_metric_learning.__version__,
        "machine.numpy_version": np.__version__,
        "machine.python_version": platform.python_version(),
        "machine.threads": torch.get_num_threads(),
        "machine.device": "cpu",
        "machine.processor": platform.processor() or platform.machine(),
        "machine.cpu_count": os.cpu_count() or 0,
        # Other processes on the box skew timings (torch's intra-op threads wait on
        # descheduled peers); the load averages say how quiet the run was.
        "machine.load_avg_1min_before": os.getloadavg()[0],
        "settings.warmup": args.warmup,
        "settings.repeats": args.repeats,
        "settings.target_s": args.target_s,
    }
    results |= bench_sampling(args)
    results |= bench_losses(args)
    results["machine.load_avg_1min_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:40s} {value:.6g}" if isinstance(value, float) else f"{key:40s} {value}")


if __name__ == "__main__":
    main()
