"""Where the denoising HVAE's training step spends its time, written to JSON (issue 17 item 4:
the budget in float32 on AVX2-only CPUs).

One process runs the method's own loss, backward pass and optimiser step
(``benchmarks/hvae_data_parallel.py``'s ``training_step``: default model, batch and loss,
channels-last, ``cpu_bf16`` as given) under ``torch.profiler`` for ``--steps`` steps after 3
warm-up steps. Reported: the profiled seconds per step, each op group's share of the profiled
self CPU time (convolution forward, convolution backward, SiLU forward and backward, the rest)
and the ``--top`` most expensive (op, input shapes) pairs with their milliseconds per step.

Usage: python benchmarks/hvae_step_profile.py --threads 1 --bf16 false \\
    --out benchmarks/results/hvae_step_profile.json
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch
from bench_common import machine_info, write_figures
from hvae_data_parallel import cpu_bf16_setting, default_pairs, training_step

# aten op name -> group; every other op is "other"
GROUPS = {"aten::convolution_backward": "conv_backward", "aten::mkldnn_convolution": "conv_forward",
          "aten::_convolution": "conv_forward", "aten::silu": "silu",
          "aten::silu_backward": "silu"}


def profiled_steps(steps: int, bf16: bool | str) -> torch.profiler.profile:
    """The profiler of ``steps`` HVAE training steps in this process (after 3 unprofiled
    warm-up steps)."""
    batches, step = training_step(*default_pairs(steps + 3), bf16, data_parallel=False)
    for _ in range(3):
        step(next(batches))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                record_shapes=True) as profiler:
        for _ in range(steps):
            step(next(batches))
    return profiler


def step_figures(profiler: torch.profiler.profile, *, steps: int, top: int) -> dict[str, object]:
    """Seconds per step, the op groups' shares and the ``top`` (op, shapes) in ms per step."""
    events = profiler.key_averages(group_by_input_shape=True)
    total_us = sum(event.self_cpu_time_total for event in events)
    groups: dict[str, float] = defaultdict(float)
    for event in events:
        groups[GROUPS.get(event.key, "other")] += event.self_cpu_time_total
    figures: dict[str, object] = {"hvae.step_profiled_s": total_us / steps / 1e6}
    figures.update({f"hvae.share.{group}": us / total_us for group, us in sorted(groups.items())})
    ranked = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:top]
    figures["hvae.top_ops"] = [
        {"op": event.key, "shapes": str(event.input_shapes),
         "ms_per_step": event.self_cpu_time_total / steps / 1e3, "calls_per_step": event.count / steps}
        for event in ranked]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", choices=("auto", "true", "false"), default="false",
                        help="cpu_bf16 (false: float32, as on an AVX2-only CPU)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profiler = profiled_steps(args.steps, cpu_bf16_setting(args.bf16))
    write_figures({**machine_info(), "hvae.threads": args.threads, "hvae.cpu_bf16": args.bf16,
                   **step_figures(profiler, steps=args.steps, top=args.top)}, args.out)


if __name__ == "__main__":
    main()
