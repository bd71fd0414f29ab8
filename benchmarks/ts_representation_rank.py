"""How many independent directions the SVM protocol's features hold, per method: each method
pretrained and scored on one set and seed by ``benchmarks/ts_methods.py``'s
``pretrain_and_classify`` (its training series encoded as the SVM sees them), then, over those
``[N, D]`` features:

- ``participation_ratio``: ``(sum l)^2 / sum l^2`` of the covariance eigenvalues ``l``, the
  effective number of dimensions (``D`` for isotropic features, 1 for a single direction);
- ``components_90`` / ``components_99``: principal components needed for 90 / 99 % of the
  variance;
- ``mean_squared_correlation``: the decorrelation penalty of
  :mod:`contrastive_signals.losses.decorrelation` on these pooled features;
- ``errors``: SVM-protocol test errors, as in ``ts_methods.py``.

    PYTHONPATH=src python benchmarks/ts_representation_rank.py --datasets MNIST1D --seeds 42 43 \\
        --method ts2vec --method 'ts2vec_decorrelated={"ts2vec": {"decorrelation": 5.0}}' \\
        --out benchmarks/results/ts_representation_rank.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from bench_common import ROOT, machine_info, write_figures
from ts_methods import load_sets, method_entries, pretrain_and_classify

from contrastive_signals.losses.decorrelation import decorrelation_penalty
from contrastive_signals.training.device import torch_threads


def spectrum_figures(features: np.ndarray) -> dict[str, float]:
    """Effective-dimension figures of ``features`` ``[N, D]`` (see the module docstring)."""
    eigenvalues = np.clip(np.linalg.eigvalsh(np.cov(features, rowvar=False))[::-1], 0, None)
    explained = np.cumsum(eigenvalues) / eigenvalues.sum()
    return {
        "participation_ratio": float(eigenvalues.sum() ** 2 / np.square(eigenvalues).sum()),
        "components_90": int(np.searchsorted(explained, 0.90) + 1),
        "components_99": int(np.searchsorted(explained, 0.99) + 1),
        "mean_squared_correlation": float(decorrelation_penalty(
            torch.from_numpy(features).double())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", action="append", default=[])
    parser.add_argument("--datasets", nargs="+", default=["MNIST1D"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/ts_representation_rank.json")
    args = parser.parse_args()
    entries, sets = method_entries(args.method), load_sets(args.datasets)
    figures: dict[str, object] = {"config.seeds": args.seeds, "config.methods": entries}
    with torch_threads(args.threads):
        for seed in args.seeds:
            for dataset, data in sets.items():
                for method, entry in entries.items():
                    key = f"{dataset}.{method}.seed{seed}"
                    train, predicted, _, _ = pretrain_and_classify(data, entry, seed, key)
                    errors = int((predicted != data["y_test"].numpy()).sum())
                    measured = {**spectrum_figures(train.astype(np.float64)), "errors": errors}
                    figures.update({f"{key}.{name}": value for name, value in measured.items()})
                    print(key, measured, flush=True)
    write_figures({**figures, **machine_info()}, args.out)


if __name__ == "__main__":
    main()
