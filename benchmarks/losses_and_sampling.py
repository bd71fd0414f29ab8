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


def median_seconds(fn: Callable[[], object], *, warmup: int, repeats: int, inner: int = 1) -> float:
    """Median over ``repeats`` of the mean time of ``inner`` back-to-back calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def forward_backward(loss_fn: Callable[..., torch.Tensor], *leaves: torch.Tensor) -> Callable[[], None]:
    """A closure running ``loss_fn(*leaves).backward()`` with fresh gradients."""

    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        loss_fn(*leaves).backward()

    return step


def bench_sampling(args: argparse.Namespace) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (args.n_labels,), generator=g)
    vec = median_seconds(
        lambda: offline_triplets(labels, generator=g), warmup=args.warmup, repeats=args.repeats, inner=5
    )
    rng = np.random.default_rng(0)
    loop = median_seconds(
        lambda: rejection_loop_triplets(labels, rng=rng), warmup=1, repeats=args.loop_repeats
    )
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
    # Interleave the two so that drifting machine load hits both alike.
    ours_s, pml_s = [], []
    for _ in range(args.rounds):
        ours_s.append(median_seconds(ours, warmup=args.warmup, repeats=args.repeats, inner=args.inner))
        pml_s.append(median_seconds(pml, warmup=args.warmup, repeats=args.repeats, inner=args.inner))
    o, p = statistics.median(ours_s), statistics.median(pml_s)
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
    pml_triplet = losses.TripletMarginLoss(margin=margin, distance=raw, reducer=reducers.MeanReducer())
    out |= bench_pair(
        "triplet_batch_hard",
        forward_backward(lambda e: mined_triplet_loss(e, labels, margin=margin, mining="batch_hard"), x),
        forward_backward(lambda e: pml_triplet(e, labels, pml_miner(e, labels)), x_pml),
        args,
    )
    out |= {"triplet_batch_hard.n": n, "triplet_batch_hard.dim": d, "triplet_batch_hard.classes": c}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/losses_and_sampling.json"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=20, help="calls per timed repeat (losses)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved ours/PML rounds")
    parser.add_argument("--loop-repeats", type=int, default=3)
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
        "settings.warmup": args.warmup,
        "settings.repeats": args.repeats,
        "settings.inner": args.inner,
        "settings.rounds": args.rounds,
    }
    results |= bench_sampling(args)
    results |= bench_losses(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:40s} {value:.6g}" if isinstance(value, float) else f"{key:40s} {value}")


if __name__ == "__main__":
    main()
