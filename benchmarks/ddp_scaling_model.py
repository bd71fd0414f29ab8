"""Modelled data-parallel scaling of the digits SimCLR model and the two sleep models, written to
JSON and printed as the markdown table of docs/scaling.md.

Per model (default parameters, one optimiser step on the global batch): parameters, forward +
backward FLOPs (torch's FlopCounterMode), the bytes each rank all-gathers (embeddings,
codeword statistics) and all-reduces (gradients), and the measured one-process step time on
this CPU. The projection for ``W`` GPUs (one rank each) over a link of bandwidth ``bw`` and
latency ``lat`` (assumptions in ``LINKS`` and ``GPU``, written out in docs/scaling.md)::

    t_compute(W) = max(flops / W / rate, t_floor)     # per-rank share of the batch
    t_redundant  = redundant_share * flops / rate     # global-batch work on every rank (views)
    t_comm(W)    = ring all-reduce 2 (W-1)/W * grad_bytes / bw + 2 (W-1) lat
                 + all-gather (W-1)/W * gather_bytes / bw + (W-1) lat  (+ its backward, same)
    t(W)         = t_compute(W) + t_redundant + (1 - overlap) * t_allreduce + t_gather
    efficiency   = t(1) / (W * t(W))    (the global batch fixed, as fit.devices keeps it)
    weak         = t(1) / t(W) with the global batch W times larger (per-rank batch fixed)

Usage: python benchmarks/ddp_scaling_model.py --out benchmarks/results/ddp_scaling_model.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml
from bench_common import machine_info, write_figures
from torch.utils.flop_counter import FlopCounterMode

from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.config import from_params
from contrastive_signals.data.digits import embedded_digits
from contrastive_signals.methods.two_view import TwoViewMethod, TwoViewParams
from contrastive_signals.methods.wav2vec import Wav2VecMethod, Wav2VecParams, wav2vec_losses
from contrastive_signals.models.registry import EncoderSpec
from contrastive_signals.models.sleep import SleepStager
from contrastive_signals.signal.image_filters import normalize

ROOT = Path(__file__).resolve().parents[1]
GPU = {"name": "H100-class", "effective_tflops": 120.0, "floor_ms": 2.0}
"""An H100 SXM peaks near 990 dense bf16 TFLOP/s; small convolutions, LSTMs and attention of
width 64 reach far less: 120 TFLOP/s (about 12 % of peak) assumed here. A step never takes less
than ``floor_ms`` (kernel launches, the optimiser, Python), whatever its FLOPs."""
LINKS = {"nvlink": (300e9, 5e-6), "ethernet_100g": (10e9, 30e-6),
         "ethernet_10g": (1e9, 50e-6)}
"""Effective bytes/s per rank and latency per message: NVLink 4 (H100 SXM: about 450 GB/s per
direction; nccl reaches ~300 GB/s bus bandwidth), 100 and 10 Gbit Ethernet at ~80 % of line
rate with TCP (no RDMA)."""
OVERLAP = 0.5  # share of the gradient all-reduce hidden behind backward by DDP's buckets
RANKS = (1, 2, 8)


def _params(path: str, *keys: str) -> dict:
    values = yaml.safe_load((ROOT / "conf/base" / path).read_text())
    for key in keys:
        values = values[key]
    return values


def _measure(step, model: torch.nn.Module) -> tuple[float, float]:
    """``(fwd+bwd FLOPs, median CPU ms)`` of ``step()`` (which returns the loss)."""
    with FlopCounterMode(display=False) as counter:
        step().backward()
    flops = counter.get_total_flops()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        step().backward()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    return float(flops), 1000 * sorted(times)[1]


def digits_simclr() -> dict[str, float]:
    params = _params("parameters_pretraining.yml", "pretraining", "simclr")
    images = normalize(embedded_digits()[0])
    spec = from_params(EncoderSpec, params["encoder"], path="simclr.encoder")
    method = TwoViewMethod(from_params(TwoViewParams, params["method"], path="simclr.method"),
                           ViewAugmentation.from_params(params["augmentation"]),
                           modality="image", output=spec.entry.output)
    model = method.build(spec.build(images.shape[1], seed=0)[0], seed=0)
    batch = params["batch_size"]
    generator = torch.Generator().manual_seed(0)
    x = images[:batch]
    flops, ms = _measure(lambda: method.loss(model, (x,), generator), model)
    out_dim = params["method"]["head"]["out_dim"]
    start = time.perf_counter()
    for _ in range(3):
        method.views.two_views(x, generator=generator)
    augment_ms = 1000 * (time.perf_counter() - start) / 3
    return {"batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            "flops": flops, "cpu_step_ms": ms, "gather_bytes": 2 * batch * out_dim * 2,
            "redundant_share": augment_ms / ms}


def sleep_wav2vec() -> dict[str, float]:
    params = _params("parameters_wav2vec.yml", "wav2vec", "pretraining")
    method_params = from_params(Wav2VecParams, params["method"], path="wav2vec.method")
    method = Wav2VecMethod(method_params, total_steps=100)
    model = method.build_seeded("sleep_cnn", {"in_channels": 3, "dropout": 0.0,
                                              "base_channels": 16}, seed=0)
    batch = params["batch_size"]
    x = torch.randn(batch, 3, params["segment_epochs"] * 3000)
    generator = torch.Generator().manual_seed(0)
    flops, ms = _measure(lambda: wav2vec_losses(model, x, objective=method_params.objective,
                                                temperature=1.0, generator=generator).total,
                         model)
    groups, entries = method_params.model.codebook_groups, method_params.model.codebook_entries
    return {"batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            "flops": flops, "cpu_step_ms": ms, "gather_bytes": 4 * (groups * entries + 4),
            "redundant_share": 0.0}


def sleep_stager() -> dict[str, float]:
    params = _params("parameters_sleep.yml", "sleep", "training")
    model = SleepStager(3, **params["model"])
    batch, window = params["batch_size"], params["window"]
    x = torch.randn(batch, window, 3, 3000)
    flops, ms = _measure(lambda: sum(o.float().square().mean() for o in model(x)), model)
    return {"batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            # the per-epoch and CTC logits are gathered (bf16): [B, W, K] and [B, W, K + 1]
            "flops": flops, "cpu_step_ms": ms, "gather_bytes": 2 * batch * window * (2 * 5 + 1),
            "redundant_share": 0.0}


def projected_ms(model: dict[str, float], world: int, link: tuple[float, float], *,
                 weak: bool = False) -> float:
    """Step time on ``world`` GPUs over ``link`` (see the module docstring); ``weak``: the
    global batch grown ``world``-fold (the per-rank batch fixed, as with ``lr_scaling``)."""
    rate = GPU["effective_tflops"] * 1e12
    grow = world if weak else 1
    compute = max(model["flops"] * grow / world / rate * 1000, GPU["floor_ms"])
    redundant = model["redundant_share"] * model["flops"] * grow / rate * 1000
    if world == 1:
        return compute + redundant
    bandwidth, latency = link
    grad = 4 * model["parameters"]
    allreduce = (2 * (world - 1) / world * grad / bandwidth + 2 * (world - 1) * latency) * 1000
    gather = 2 * ((world - 1) / world * grow * model["gather_bytes"] / bandwidth
                  + (world - 1) * latency) * 1000 if model["gather_bytes"] else 0.0
    return compute + redundant + (1 - OVERLAP) * allreduce + gather


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/ddp_scaling_model.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    models = {"digits_simclr": digits_simclr(), "sleep_wav2vec": sleep_wav2vec(),
              "sleep_stager": sleep_stager()}
    figures: dict[str, object] = {"assumption.gpu": GPU, "assumption.links": LINKS,
                                  "assumption.allreduce_overlap": OVERLAP}
    rows = ["| model | batch | parameters | GFLOP/step | all-gather / all-reduce bytes per step "
            "| CPU step here | " + " | ".join(f"eff. 8 GPUs {name}" for name in LINKS)
            + " | " + " | ".join(f"eff. 8 GPUs {name}, batch x 8" for name in LINKS) + " |",
            "|---|---:|---:|---:|---|---:|" + "---:|" * 2 * len(LINKS)]
    for name, model in models.items():
        for key, value in model.items():
            figures[f"{name}.{key}"] = value
        single = projected_ms(model, 1, LINKS["nvlink"])
        effs, weak_effs = [], []
        for link_name, link in LINKS.items():
            for world in RANKS:
                step = projected_ms(model, world, link)
                figures[f"{name}.W{world}.{link_name}.step_ms"] = round(step, 3)
                figures[f"{name}.W{world}.{link_name}.efficiency"] = round(
                    single / (world * step), 3)
                weak = projected_ms(model, world, link, weak=True)
                figures[f"{name}.W{world}.{link_name}.weak_efficiency"] = round(single / weak, 3)
            effs.append(figures[f"{name}.W8.{link_name}.efficiency"])
            weak_effs.append(figures[f"{name}.W8.{link_name}.weak_efficiency"])
        rows.append(f"| {name} | {model['batch']} | {model['parameters']:,} | "
                    f"{model['flops'] / 1e9:.2f} | {model['gather_bytes']:,} / "
                    f"{4 * model['parameters']:,} | {model['cpu_step_ms']:.0f} ms | "
                    + " | ".join(f"{e:.2f}" for e in effs + weak_effs) + " |")
    figures.update(machine_info())
    write_figures(figures, args.out)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
