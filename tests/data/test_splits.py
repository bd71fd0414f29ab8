"""Seeded label subsets, stratified splits with unlabelled items and labelled training
subsets."""

import numpy as np
import pytest

from contrastive_signals.data.splits import (
    LabelledSplitParams,
    label_fraction_subsets,
    label_subset,
    split_with_unlabelled,
)


def test_label_subsets():
    assert label_subset(16, fraction=0.1, seed=0, subset_seed=0) == \
        label_subset(16, fraction=0.1, seed=0, subset_seed=0)
    assert len(label_subset(16, fraction=0.1, seed=0, subset_seed=0)) == 2
    assert len(label_subset(5, fraction=0.1, seed=0, subset_seed=0)) == 1
    assert label_subset(16, fraction=1.0, seed=3, subset_seed=0) == list(range(16))
    subsets = {tuple(label_subset(16, fraction=0.25, seed=s, subset_seed=0)) for s in range(3)}
    assert len(subsets) == 3






def test_split_keeps_unlabelled_apart_and_subsets_nest_per_class():
    labels = np.array([-1] * 10 + [0, 1, 2] * 20)
    params = LabelledSplitParams(label_fractions={"small": 0.2, "all": 1.0})
    split = split_with_unlabelled(labels, params)
    assert split["unlabelled"] == list(range(10))
    parts = [set(split[name]) for name in ("train", "val", "test")]
    assert sum(map(len, parts)) == 60 and not (parts[0] & parts[1] or parts[0] & parts[2])
    assert set(split["labelled"]["all"]) == parts[0]
    small = split["labelled"]["small"]
    assert set(small) < parts[0] and len(small) == 3 * round(0.2 * len(parts[0]) / 3)
    assert split == split_with_unlabelled(labels, params)  # seeded


def test_at_least_two_per_class_and_bad_inputs():
    labels = np.array([0] * 5 + [1] * 5)
    subsets = label_fraction_subsets(labels, np.arange(10), {"tiny": 0.01}, seed=0)
    assert sorted(labels[subsets["tiny"]].tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="1 class"):
        split_with_unlabelled(np.array([0] * 6 + [-1]), LabelledSplitParams())
    with pytest.raises(ValueError, match="label_fractions"):
        LabelledSplitParams(label_fractions={"x": 1.5})
