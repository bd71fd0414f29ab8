"""TS2Vec's own code (the authors' repository as packaged on PyPI: ``ts2vec``) and ours side by
side in one run: SVM-protocol accuracy and pretraining seconds per UCR/UEA set, seed 42, 2 CPU
threads. Theirs with the authors' default settings (batch 8, lr 1e-3, 320-d representations,
200 iterations for small sets) and their ``fit_svm``; ours with the `timeseries_ucr` pipeline's
nodes and its default parameters (conf/base/parameters_timeseries.yml, method `ts2vec`).

Data as the authors' loaders prepare it: univariate UCR sets as stored (already z-normalised),
UEA sets scaled per channel with the training split's statistics, and steps beyond a series'
length as NaN (TS2Vec masks NaN). Writes a flat JSON object::

    ts2vec_ref.<Dataset>.svm.acc, ts2vec_ref.<Dataset>.pretrain_seconds,
    ts2vec_ref.<Dataset>.svm_c, ours.<Dataset>.svm.acc, ours.<Dataset>.pretrain_seconds,
    ratio.<Dataset>.pretrain_seconds (ours / theirs), loadavg.*, machine.*

    python benchmarks/ts2vec_reference.py --out benchmarks/results/ts2vec_reference.json
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings
from pathlib import Path

import numpy as np
import yaml
from bench_common import ROOT, machine_info, write_figures

from contrastive_signals.io.ucr_dataset import UcrArchiveDataset
from contrastive_signals.pipelines.timeseries.nodes import (
    evaluate_ts_encoders,
    load_ucr_datasets,
    pretrain_ts_encoders,
)

DATASETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels")


def authors_fit_svm():
    """``fit_svm`` from the package's tasks/_eval_protocols.py, loaded alone: the tasks
    package imports `bottleneck` for anomaly detection, which is not needed here."""
    import ts2vec

    path = Path(ts2vec.__file__).parent / "tasks" / "_eval_protocols.py"
    spec = importlib.util.spec_from_file_location("ts2vec_eval_protocols", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fit_svm


def as_authors_data(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``[N, T, C]`` train and test series prepared as TS2Vec's loaders do (see the module
    docstring), from our archive reader's padded arrays and masks."""
    train = np.array(data["x_train"], dtype=np.float64)
    test = np.array(data["x_test"], dtype=np.float64)
    train[~np.asarray(data["mask_train"], dtype=bool)] = np.nan
    test[~np.asarray(data["mask_test"], dtype=bool)] = np.nan
    if train.shape[2] > 1:  # UEA: sklearn StandardScaler per channel, fitted on train
        mean = np.nanmean(train, axis=(0, 1))
        std = np.nanstd(train, axis=(0, 1))
        train, test = (train - mean) / std, (test - mean) / std
    return train, test


def run_dataset(name: str, archive: dict, seed: int, threads: int) -> dict[str, float]:
    from ts2vec import TS2Vec
    from ts2vec.utils import init_dl_program

    data = archive[name](standardise=False)  # as stored; the UEA scaling is below
    train, test = as_authors_data(data)
    init_dl_program("cpu", seed=seed, max_threads=threads)
    model = TS2Vec(input_dims=train.shape[2], device="cpu", batch_size=8, lr=0.001,
                   output_dims=320, max_train_length=3000)
    start = time.perf_counter()
    model.fit(train, verbose=False)
    seconds = time.perf_counter() - start
    train_repr = model.encode(train, encoding_window="full_series")
    test_repr = model.encode(test, encoding_window="full_series")
    with warnings.catch_warnings():  # their grid passes SVC's deprecated `probability=False`
        warnings.simplefilter("ignore", FutureWarning)
        svm = authors_fit_svm()(train_repr, np.asarray(data["y_train"]))
    accuracy = float(svm.score(test_repr, np.asarray(data["y_test"])))
    print(f"{name}: authors' acc {accuracy:.3f}, pretraining {seconds:.1f} s", flush=True)
    return {f"ts2vec_ref.{name}.svm.acc": accuracy,
            f"ts2vec_ref.{name}.pretrain_seconds": round(seconds, 1),
            # C = inf is the authors' hard margin; JSON has no infinity
            f"ts2vec_ref.{name}.svm_c": "inf" if np.isinf(svm.C) else float(svm.C)}


def run_ours(name: str, archive: dict, seed: int, threads: int) -> dict[str, float]:
    """The pipeline's nodes on one set with the default `ts2vec` method and ``seed``."""
    params = yaml.safe_load((ROOT / "conf/base/parameters_timeseries.yml").read_text())
    ucr = params["timeseries"]["ucr"]
    method = {**ucr["methods"]["ts2vec"], "seed": seed}
    ucr = {**ucr, "datasets": [name], "num_threads": threads, "methods": {"ts2vec": method},
           "default_method": "ts2vec"}
    data = load_ucr_datasets(archive, ucr)
    bundles, seconds, _ = pretrain_ts_encoders(data, ucr)
    metrics, _ = evaluate_ts_encoders(data, bundles, ucr)
    accuracy = metrics[f"ts.{name}.ts2vec.svm.acc"]
    ours_seconds = seconds[f"ts.{name}.ts2vec.pretrain_seconds"]
    print(f"{name}: ours acc {accuracy:.3f}, pretraining {ours_seconds:.1f} s", flush=True)
    return {f"ours.{name}.svm.acc": accuracy,
            f"ours.{name}.pretrain_seconds": round(ours_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ts2vec_reference.json")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    archive = UcrArchiveDataset(folder=str(ROOT / "data/01_raw/ucr")).load()
    before = os.getloadavg()
    figures: dict[str, object] = {"config.seed": args.seed, "config.threads": args.threads}
    for name in args.datasets:
        figures.update(run_dataset(name, archive, args.seed, args.threads))
        figures.update(run_ours(name, archive, args.seed, args.threads))
        figures[f"ratio.{name}.pretrain_seconds"] = round(
            figures[f"ours.{name}.pretrain_seconds"]
            / figures[f"ts2vec_ref.{name}.pretrain_seconds"], 2)
    after = os.getloadavg()
    figures.update({"loadavg.before_1min": before[0], "loadavg.after_1min": after[0],
                    "loadavg.after_5min": after[1], **machine_info("ts2vec", "scikit-learn")})
    write_figures(figures, args.out)


if __name__ == "__main__":
    main()
