"""MNIST-1D (Greydanus 2020) from the ``mnist1d`` package's generator, never its download.

``mnist1d.data.make_dataset`` builds the set in memory from ten templates (no network, no file);
``mnist1d.data.get_dataset`` is not used because it tries to download a pickle first and writes
one to the working directory. The generator seeds numpy's and Python's *global* random state; the
caller's state is saved and restored around it, so generating has no side effect.

(The module is not called ``mnist1d`` so that it never shadows the package.)
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def generate_mnist1d(*, seed: int | None = None, num_samples: int | None = None,
                     **overrides: Any) -> dict[str, np.ndarray]:
    """The MNIST-1D set with ``get_dataset_args()`` defaults (5,000 samples split 4,000/1,000,
    length 40, seed 42) unless overridden.

    Args:
        seed: generator seed (default: the package's 42).
        num_samples: total samples before the 80/20 split (default 5,000).
        overrides: any other ``get_dataset_args`` key (e.g. ``final_seq_length``).

    Returns:
        ``{"x_train" [N, T] float32, "y_train" [N] int64, "x_test" [M, T], "y_test" [M]}``.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # heavy import, only when used

    args = get_dataset_args()
    unknown = sorted(set(overrides) - set(vars(args)))
    if unknown:
        raise ValueError(f"unknown MNIST-1D argument(s) {unknown}; valid: {sorted(vars(args))}")
    for key, value in overrides.items():
        setattr(args, key, value)
    if seed is not None:
        args.seed = seed
    if num_samples is not None:
        if num_samples < 20:
            raise ValueError(f"num_samples must be >= 20 (two per class per split), got "
                             f"{num_samples}")
        args.num_samples = num_samples
    # The package's generator seeds the global state; save and restore it around the call.
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)
    return {"x_train": np.asarray(data["x"], dtype=np.float32),
            "y_train": np.asarray(data["y"], dtype=np.int64),
            "x_test": np.asarray(data["x_test"], dtype=np.float32),
            "y_test": np.asarray(data["y_test"], dtype=np.int64)}
