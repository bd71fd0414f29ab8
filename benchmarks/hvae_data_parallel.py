"""The denoising HVAE's training step in one process against 2 data-parallel ranks, side by
side, written to JSON.

Both run the method's own loss (``hvae_split``: the ELBO of clean and noisy images, the
triplets, the removal and injection decodes) on the default model and batch
(``conf/base/parameters_denoising.yml``) over sparse-view pairs of the default phantoms:

  - ``single``: one process with every core (``torch.set_num_threads(cores)``), as
    ``strategy: single`` trains;
  - ``ddp2``: 2 ranks through the project's launcher (``run_on_ranks``, gloo on the CPU), each
    with ``cores / 2`` threads, each running its shard of every network pass with the outputs
    gathered with gradient (``methods/hvae.py``): the one-process loss and gradients.

The two alternate ``--repeats`` times (the load of a shared machine moves in between). Reported
per layout: the median over repeats of the median step seconds (after 3 warm-up steps), every
repeat's median, and ``ddp2_over_single``, the ratio of the step times (< 1: the ranks are
faster). ``--isa avx2`` limits oneDNN and ATen to AVX2 (no bf16 kernels), as on an AVX2-only CPU.

``--swap-fractions 1.0 0.25`` instead times the 2 ranks at each ``loss.swap_fraction`` (the
share of a batch's pairs the removal and injection decodes take), alternating, with each
fraction's step time over the first's.

Usage: python benchmarks/hvae_data_parallel.py --out benchmarks/results/hvae_data_parallel.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import yaml
from bench_common import machine_info, write_figures

ROOT = Path(__file__).resolve().parents[1]


def default_pairs(steps: int, swap_fraction: float | None = None) -> tuple[dict, dict]:
    """The default parameters (with ``loss.swap_fraction`` when given) and pairs with just
    enough training images for ``steps`` batches."""
    from contrastive_signals.pipelines.denoising.nodes import (
        make_denoising_images,
        make_sparse_view_pairs,
    )

    params = yaml.safe_load((ROOT / "conf/base/parameters_denoising.yml").read_text())["denoising"]
    if swap_fraction is not None:
        params["hvae"]["loss"]["swap_fraction"] = swap_fraction
    data = params["data"]
    data["train_size"] = steps * params["hvae"]["batch_size"]
    # the donor pool is drawn from the training images (the parameter check asks for it)
    data["donor_pool"] = min(data["donor_pool"], data["train_size"])
    return params, make_sparse_view_pairs(make_denoising_images(params, {}), params)


def training_step(params: dict, pairs: dict, bf16: bool | str, *, data_parallel: bool
                  ) -> tuple[Iterator[tuple], Callable[[tuple], None]]:
    """The training batches of ``pairs`` and a function that takes one optimisation step of the
    HVAE split on a batch (the method's loss, backward pass and AdamW step; default model,
    channels-last, ``cpu_bf16`` as given); the model wrapped for data parallelism when
    ``data_parallel`` (as a rank)."""
    from contrastive_signals.methods.hvae import HVAESplit
    from contrastive_signals.models.registry import build_model
    from contrastive_signals.pipelines.denoising.params import check_params
    from contrastive_signals.training.autocast import CpuBf16Forward
    from contrastive_signals.training.ranks import data_parallel_model

    run = check_params(params).hvae
    method = HVAESplit(run.loss, forward=CpuBf16Forward(enabled=bf16, channels_last=True))
    model = method.build(build_model("hvae", {"image_size": params["data"]["image_size"],
                                              **run.model.config()}, seed=0))
    net = (data_parallel_model(model, every_parameter_used=method.uses_every_parameter)
           if data_parallel else model)
    optimiser = torch.optim.AdamW(net.parameters(), lr=run.fit.learning_rate)
    generator = torch.Generator().manual_seed(0)
    batches = iter(method.batches(pairs["train"], batch_size=run.batch_size, epochs=1)(
        0, generator))

    def step(batch: tuple) -> None:
        loss = method.loss(net, batch, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return batches, step


def time_steps(params: dict, pairs: dict, steps: int, bf16: str) -> float:
    """Median seconds of ``steps`` optimisation steps (after 3 warm-up steps) of the HVAE
    split on ``pairs``, in this process or as this rank."""
    batches, step = training_step(params, pairs, bf16, data_parallel=True)
    seconds = []
    for _ in range(steps + 3):
        batch = next(batches)
        start = time.perf_counter()
        step(batch)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[3:])


def _one_layout(layout: str, steps: int, bf16: str, swap_fraction: float | None = None
                ) -> float:
    from contrastive_signals.training.device import available_cores
    from contrastive_signals.training.distributed import run_on_ranks
    from contrastive_signals.training.fit import FitConfig

    params, pairs = default_pairs(steps + 3, swap_fraction)
    if layout == "single":
        torch.set_num_threads(available_cores())
        return time_steps(params, pairs, steps, bf16)
    config = FitConfig(epochs=1, learning_rate=1e-3, strategy="ddp", devices=2, device="cpu")
    return run_on_ranks(time_steps, params, pairs, steps, bf16, config=config)[0]


def cpu_bf16_setting(option: str) -> bool | str:
    """The ``--bf16`` option as ``cpu_bf16`` takes it: ``true`` / ``false`` as booleans,
    ``auto`` as it is."""
    return {"true": True, "false": False}.get(option, option)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/hvae_data_parallel.json")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16", default="auto", help="cpu_bf16: auto | true | false")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--swap-fractions", type=float, nargs="+",
                        help="time 2 ranks at each loss.swap_fraction instead of the layouts")
    parser.add_argument("--layout", choices=("single", "ddp2"), help=argparse.SUPPRESS)
    parser.add_argument("--swap-fraction", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    bf16 = cpu_bf16_setting(args.bf16)
    if args.layout:  # a child: one layout, its median step on stdout
        print(_one_layout(args.layout, args.steps, bf16, args.swap_fraction))
        return
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    if args.isa == "avx2":
        env.update(ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    # what alternates: the layouts, or the swap fractions on 2 ranks
    children = ({"single": ["--layout", "single"], "ddp2": ["--layout", "ddp2"]}
                if not args.swap_fractions else
                {f"ddp2_swap_fraction_{f:g}": ["--layout", "ddp2", "--swap-fraction", str(f)]
                 for f in args.swap_fractions})
    runs: dict[str, list[float]] = {name: [] for name in children}
    for _ in range(args.repeats):
        for name, child in children.items():  # each in a fresh interpreter, alternating
            out = subprocess.run(
                [sys.executable, __file__, *child, "--steps", str(args.steps),
                 "--bf16", args.bf16], env=env, check=True, capture_output=True, text=True)
            runs[name].append(float(out.stdout.strip().splitlines()[-1]))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    first = next(iter(medians))
    ratios = ({"ddp2_over_single": medians["ddp2"] / medians["single"]}
              if not args.swap_fractions else
              {f"{name}_over_{first}": medians[name] / medians[first] for name in medians})
    write_figures({
        "command": " ".join(["python benchmarks/hvae_data_parallel.py", *sys.argv[1:]]),
        "machine": machine_info("torch"), "isa": args.isa, "cpu_bf16": args.bf16,
        "steps_per_repeat": args.steps,
        "step_seconds": {name: {"median": medians[name], "per_repeat": values}
                         for name, values in runs.items()},
        **ratios,
    }, args.out)


if __name__ == "__main__":
    main()
