"""Seeded, stratified train/validation/test splits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


def label_fraction_subsets(labels: np.ndarray, train: np.ndarray,
                           fractions: Mapping[str, float], *, seed: int,
                           min_per_class: int = 2) -> dict[str, list[int]]:
    """Nested-by-fraction labelled subsets of the ``train`` indices: for each name, a share
    ``fraction`` of every class's training indices (at least ``min_per_class``, at most all),
    drawn with one generator seeded by ``seed`` in the order of ``fractions``.

    Returns:
        ``{name: sorted indices}``.
    """
    rng = np.random.default_rng(seed)
    subsets = {}
    for name, fraction in fractions.items():
        chosen = []
        for cls in np.unique(labels[train]):
            members = train[labels[train] == cls]
            n = min(len(members), max(min_per_class, int(round(fraction * len(members)))))
            chosen.append(rng.choice(members, size=n, replace=False))
        subsets[name] = np.sort(np.concatenate(chosen)).tolist()
    return subsets


@dataclass(frozen=True)
class LabelledSplitParams:
    """Fractions of the labelled items held out for validation and test, the seed, and the
    labelled training subsets by name (``{name: fraction of each class}``), drawn with
    ``label_seed`` (default: ``seed``; set it alone to vary which items are labelled while the
    train / val / test split stays)."""

    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    label_fractions: dict[str, float] = field(default_factory=lambda: {"100pc": 1.0})
    label_seed: int | None = None

    def __post_init__(self) -> None:
        if not all(0 < value <= 1 for value in self.label_fractions.values()):
            raise ValueError(f"label_fractions must lie in (0, 1]; got {self.label_fractions}")


def split_with_unlabelled(labels: np.ndarray, params: LabelledSplitParams, *,
                          unlabelled: int = -1) -> dict[str, Any]:
    """A stratified train / val / test split of the labelled items of ``labels`` ``[N]``
    (``unlabelled`` marks the others), the unlabelled indices, and labelled training subsets
    (:func:`label_fraction_subsets` with ``params.label_fractions``).

    Returns:
        ``{"train", "val", "test", "unlabelled": [indices], "labelled": {name: [indices]}}``.

    Raises:
        ValueError: fewer than 2 labelled classes.
    """
    labelled = np.flatnonzero(labels != unlabelled)
    classes = len(np.unique(labels[labelled]))
    if classes < 2:
        raise ValueError(f"the labelled items carry {classes} class(es); classification needs "
                         "at least 2")
    parts = stratified_split_indices(labels[labelled], val_fraction=params.val_fraction,
                                     test_fraction=params.test_fraction, seed=params.seed)
    split: dict[str, Any] = {name: labelled[idx].tolist() for name, idx in parts.items()}
    split["unlabelled"] = np.flatnonzero(labels == unlabelled).tolist()
    split["labelled"] = label_fraction_subsets(labels, np.asarray(split["train"]),
                                               params.label_fractions,
                                               seed=params.seed if params.label_seed is None
                                               else params.label_seed)
    return split
