"""Seeded subsets of labelled items for label-efficiency runs."""

from contrastive_signals.data.splits import label_subset


def test_label_subsets():
    assert label_subset(16, fraction=0.1, seed=0, subset_seed=0) == \
        label_subset(16, fraction=0.1, seed=0, subset_seed=0)
    assert len(label_subset(16, fraction=0.1, seed=0, subset_seed=0)) == 2
    assert len(label_subset(5, fraction=0.1, seed=0, subset_seed=0)) == 1
    assert label_subset(16, fraction=1.0, seed=3, subset_seed=0) == list(range(16))
    subsets = {tuple(label_subset(16, fraction=0.25, seed=s, subset_seed=0)) for s in range(3)}
    assert len(subsets) == 3
