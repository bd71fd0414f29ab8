"""Pretraining methods side by side with TS2Vec in one run: SVM-protocol accuracy (TS2Vec's
protocol, :mod:`contrastive_signals.metrics.svm_protocol`) and pretraining seconds per set and
seed, on the UCR/UEA sets of the `timeseries` pipeline and MNIST-1D (its generator, 4,000 /
1,000 series of length 40). Every method is an entry of ``timeseries.ucr.methods`` in
conf/base/parameters_timeseries.yml (``--method NAME``) or the ``ts2vec`` entry with overrides
(``--method 'NAME={"method": "softclt", "softclt": {"tau_instance": 5}}'``), with the same
seed as TS2Vec. Writes a flat JSON object::

    <Dataset>.<method>.seed<k>.{svm.acc,pretrain_seconds,pretrain_cpu_seconds,errors},
    <Dataset>.test_series,
    <Dataset>.<method>.seed<k>.delta_series (errors of ts2vec minus the method's: > 0 = ahead),
    mean.<method>.seed<k>.svm.acc (over the sets), loadavg.*, machine.*

    nice -n 5 python benchmarks/ts_methods.py --method softclt \
        --out benchmarks/results/ts_methods.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from bench_common import ROOT, machine_info, write_figures

from contrastive_signals.config import from_params
from contrastive_signals.data.mnist1d_data import generate_mnist1d
from contrastive_signals.data.ucr import load_named
from contrastive_signals.io.ucr_dataset import UcrArchiveDataset
from contrastive_signals.methods.series import SeriesPretrainParams, pretrain_series
from contrastive_signals.metrics.svm_protocol import svm_protocol_predict
from contrastive_signals.models.ts_encoders import encode_splits
from contrastive_signals.training.device import torch_threads

DATASETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "MNIST1D")


def method_entries(specs: list[str]) -> dict[str, dict[str, Any]]:
    """``ts2vec`` and each ``--method`` spec as a method entry (see the module docstring)."""
    params = yaml.safe_load((ROOT / "conf/base/parameters_timeseries.yml").read_text())
    methods = params["timeseries"]["ucr"]["methods"]
    entries = {"ts2vec": methods["ts2vec"]}
    for spec in specs:
        name, _, overrides = spec.partition("=")
        if overrides:
            entries[name] = _merged(methods["ts2vec"], json.loads(overrides))
        else:
            entries[name] = methods[name]
    return entries


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (_merged(base[key], value) if isinstance(value, dict)
                    and isinstance(base.get(key), dict) else value)
    return out


def load_sets(names: list[str]) -> dict[str, dict[str, Any]]:
    """Each set as tensors, prepared as the pipeline prepares it (``standardise: auto``)."""
    ucr = [name for name in names if name != "MNIST1D"]
    archive = UcrArchiveDataset(folder=str(ROOT / "data/01_raw/ucr")).load()
    sets = {name: {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                   for k, v in data.items()}
            for name, data in load_named(archive, ucr, standardise="auto").items()}
    if "MNIST1D" in names:
        data = generate_mnist1d(seed=42, num_samples=5000)
        sets["MNIST1D"] = {k: torch.from_numpy(v[..., None] if k.startswith("x") else v)
                           for k, v in data.items()}
    return {name: sets[name] for name in names}


def pretrain(data: dict[str, Any], params: SeriesPretrainParams, name: str) -> torch.nn.Module:
    """The encoder of ``params`` pretrained on ``data``'s training split (its mask and labels
    where the method reads them)."""
    encoder, _ = pretrain_series(data["x_train"], data.get("mask_train"), params,
                                 labels=data["y_train"], name=name)
    return encoder


def pretrain_and_classify(data: dict[str, Any], entry: dict[str, Any], seed: int, name: str
                          ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One method pretrained on one set and scored by the SVM protocol: ``(training features
    [N, D] as the SVM sees them (max over the padded window), predicted test labels,
    pretraining wall seconds, pretraining CPU seconds)``. The CPU seconds (this process's, all
    threads) move far less with other jobs' load than the wall seconds, so they compare
    methods on a shared machine."""
    params = from_params(SeriesPretrainParams, {**entry, "seed": seed}, path=name)
    start, start_cpu = time.perf_counter(), time.process_time()
    encoder = pretrain(data, params, name)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    train, test = (z.numpy() for z in encode_splits(encoder, data, pooling="padded_window"))
    predicted, _ = svm_protocol_predict(train, data["y_train"].numpy(), test)
    return train, predicted, seconds, cpu_seconds


def score(data: dict[str, Any], entry: dict[str, Any], seed: int, name: str
          ) -> tuple[float, float, float]:
    """``(SVM-protocol test accuracy, pretraining wall seconds, pretraining CPU seconds)`` of
    one method on one set (:func:`pretrain_and_classify`)."""
    _, predicted, seconds, cpu_seconds = pretrain_and_classify(data, entry, seed, name)
    return float((predicted == data["y_test"].numpy()).mean()), seconds, cpu_seconds


def run_order(methods: list[str], *, seed_index: int, set_index: int, alternate: bool
              ) -> list[str]:
    """The methods in the order they train on one set at one seed: as given, or, with
    ``alternate``, reversed on every other (seed, set) turn, so that no method always trains
    first (a process's runs move by a few percent with what ran just before)."""
    if alternate and (seed_index + set_index) % 2:
        return methods[::-1]
    return methods


def warm_up(entries: dict[str, dict[str, Any]], data: dict[str, Any], *, steps: int,
            skip: tuple[str, ...] = ()) -> None:
    """Each method pretrained for ``steps`` steps on ``data``, untimed and discarded: the
    process's one-off costs (kernel selection, the allocator's first blocks) then fall on no
    measured run. ``steps`` 0 does nothing."""
    for method, entry in entries.items():
        if steps and method not in skip:
            name = f"warm_up.{method}"
            pretrain(data, from_params(SeriesPretrainParams, {
                **entry, "iterations": steps, "iteration_scale": 1.0}, path=name), name)


def missing_reference_figures(earlier: dict[str, Any], datasets: list[str], seeds: list[int]
                              ) -> list[str]:
    """``<Dataset>.ts2vec.seed<k>`` of every set and seed that ``earlier`` (an earlier output)
    has no test errors for: checked before anything trains."""
    return [f"{dataset}.ts2vec.seed{seed}" for seed in seeds for dataset in datasets
            if f"{dataset}.ts2vec.seed{seed}.errors" not in earlier]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", action="append", default=[],
                        help="NAME (an entry of timeseries.ucr.methods) or NAME=JSON overrides "
                             "of the ts2vec entry; repeatable")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ts_methods.json")
    parser.add_argument("--ts2vec-from", type=Path, default=None,
                        help="take ts2vec's figures from this earlier output (same seeds) "
                             "instead of running it: for exploring only, no side-by-side time")
    parser.add_argument("--order", choices=("alternate", "fixed"), default="alternate",
                        help="alternate: the methods' order reversed on every other (seed, "
                             "set); fixed: always as given (the protocol before 2026-12-07)")
    parser.add_argument("--warmup-steps", type=int, default=10,
                        help="untimed pretraining steps of each method before the runs")
    args = parser.parse_args()
    earlier = json.loads(args.ts2vec_from.read_text()) if args.ts2vec_from else {}
    if args.ts2vec_from and (missing := missing_reference_figures(earlier, args.datasets,
                                                                  args.seeds)):
        parser.error(f"--ts2vec-from {args.ts2vec_from} lacks ts2vec's figures for "
                     f"{', '.join(missing)} (an unfinished run?)")
    entries = method_entries(args.method)
    sets = load_sets(args.datasets)
    before = os.getloadavg()
    figures: dict[str, object] = {"config.seeds": args.seeds, "config.threads": args.threads,
                                  "config.order": args.order,
                                  "config.warmup_steps": args.warmup_steps,
                                  "config.methods": entries}
    with torch_threads(args.threads):
        warm_up(entries, next(iter(sets.values())), steps=args.warmup_steps,
                skip=("ts2vec",) if earlier else ())
        for seed in args.seeds:
            for turn, (dataset, data) in enumerate(sets.items()):
                n_test = len(data["y_test"])
                figures[f"{dataset}.test_series"] = n_test
                for method in run_order(list(entries), seed_index=args.seeds.index(seed),
                                        set_index=turn, alternate=args.order == "alternate"):
                    key = f"{dataset}.{method}.seed{seed}"
                    if method == "ts2vec" and earlier:
                        figures.update({k: v for k, v in earlier.items()
                                        if k.startswith(f"{key}.")})
                        figures["config.ts2vec_from"] = str(args.ts2vec_from)
                        continue
                    acc, seconds, cpu_seconds = score(data, entries[method], seed, key)
                    errors = round((1 - acc) * n_test)
                    figures.update({f"{key}.svm.acc": acc, f"{key}.errors": errors,
                                    f"{key}.pretrain_seconds": round(seconds, 1),
                                    f"{key}.pretrain_cpu_seconds": round(cpu_seconds, 1)})
                    print(f"{key}: acc {acc:.4f} ({errors} errors), {seconds:.1f} s "
                          f"({cpu_seconds:.1f} CPU s), "
                          f"load {os.getloadavg()[0]:.2f}", flush=True)
                    # written after every score, marked incomplete: a run stopped by hand or
                    # killed keeps what it measured (ts_methods_summary.py refuses it)
                    write_figures({**figures, "config.complete": False}, args.out, echo=False)
                for method in entries:
                    figures[f"{dataset}.{method}.seed{seed}.delta_series"] = (
                        figures[f"{dataset}.ts2vec.seed{seed}.errors"]
                        - figures[f"{dataset}.{method}.seed{seed}.errors"])
            for method in entries:
                figures[f"mean.{method}.seed{seed}.svm.acc"] = float(np.mean(
                    [figures[f"{d}.{method}.seed{seed}.svm.acc"] for d in sets]))
                # an older output given to --ts2vec-from may lack the CPU seconds
                for figure in ("pretrain_seconds", "pretrain_cpu_seconds"):
                    keys = [f"{d}.{method}.seed{seed}.{figure}" for d in sets]
                    if all(key in figures for key in keys):
                        figures[f"total.{method}.seed{seed}.{figure}"] = round(
                            sum(figures[key] for key in keys), 1)
    after = os.getloadavg()
    figures.update({"config.complete": True,
                    "loadavg.before_1min": before[0], "loadavg.after_1min": after[0],
                    "loadavg.after_5min": after[1], **machine_info("scikit-learn")})
    write_figures(figures, args.out)


if __name__ == "__main__":
    main()
