"""Seeded, stratified train/validation/test splits."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_split_indices(
    labels: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Split ``labels`` ``[N]`` into disjoint, class-stratified index sets.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each sorted int64.
    """
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            "split fractions must satisfy 0 < test_fraction < 1, 0 <= val_fraction and "
            f"val_fraction + test_fraction < 1; got val={val_fraction}, test={test_fraction}"
        )
    all_idx = np.arange(len(labels))
    rest, test = train_test_split(
        all_idx, test_size=test_fraction, stratify=labels, random_state=seed
    )
    if val_fraction == 0:
        train, val = rest, np.array([], dtype=np.int64)
    else:
        train, val = train_test_split(
            rest,
            test_size=val_fraction / (1 - test_fraction),
            stratify=labels[rest],
            random_state=seed + 1,
        )
    return {name: np.sort(idx).astype(np.int64) for name, idx in
            {"train": train, "val": val, "test": test}.items()}


def label_subset(n_items: int, *, fraction: float, seed: int, subset_seed: int) -> list[int]:
    """Sorted indices of ``max(1, round(fraction * n))`` of ``n_items`` items (e.g. labelled
    training recordings), drawn from ``default_rng([subset_seed, seed])``: each seed its own
    subset, the same for every condition compared under that seed."""
    count = min(n_items, max(1, round(fraction * n_items)))
    rng = np.random.default_rng([subset_seed, seed])
    return sorted(int(i) for i in rng.choice(n_items, count, replace=False))
