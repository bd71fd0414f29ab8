"""Vectorised triplet and P x K sampling: semantics, reproducibility, uniformity."""

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from contrastive_signals.data.triplet_sampling import (
    offline_triplets,
    pk_batches,
    rejection_loop_triplets,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _labels(n: int, n_classes: int, seed: int) -> torch.Tensor:
    labels = torch.randint(0, n_classes, (n,), generator=_gen(seed))
    labels[:n_classes] = torch.arange(n_classes)  # every class present ...
    labels[n_classes : 2 * n_classes] = torch.arange(n_classes)  # ... at least twice
    return labels


def _assert_triplet_semantics(triplets: torch.Tensor, labels: torch.Tensor) -> None:
    a, p, n = triplets.T
    assert triplets.dtype == torch.long and triplets.shape == (len(labels), 3)
    assert torch.equal(a, torch.arange(len(labels)))  # each index is the anchor once
    assert torch.equal(labels[p], labels[a])
    assert not (p == a).any()
    assert not (labels[n] == labels[a]).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n,n_classes", [(4, 2), (50, 3), (1000, 10)])
def test_offline_triplets_semantics(n, n_classes, seed):
    labels = _labels(n, n_classes, seed)
    _assert_triplet_semantics(offline_triplets(labels, generator=_gen(seed)), labels)


def test_offline_triplets_with_unsorted_sparse_labels():
    labels = torch.tensor([7, -3, 7, 42, -3, 42, 42, 7])
    for seed in range(20):
        _assert_triplet_semantics(offline_triplets(labels, generator=_gen(seed)), labels)


def test_rejection_loop_reference_semantics():
    labels = _labels(200, 5, 0)
    _assert_triplet_semantics(rejection_loop_triplets(labels, rng=np.random.default_rng(0)), labels)


def test_offline_triplets_reproducible():
    labels = _labels(500, 7, 0)
    first = offline_triplets(labels, generator=_gen(3))
    assert torch.equal(first, offline_triplets(labels, generator=_gen(3)))
    assert not torch.equal(first, offline_triplets(labels, generator=_gen(4)))


def test_offline_triplets_does_not_mutate_labels():
    labels = _labels(100, 4, 0)
    before = labels.clone()
    offline_triplets(labels, generator=_gen(0))
    pk_batches(labels, classes_per_batch=2, samples_per_class=3, generator=_gen(0))
    assert torch.equal(labels, before)


@pytest.mark.parametrize(
    "sampler",
    [
        lambda labels, epoch: offline_triplets(labels, generator=_gen(epoch)),
        lambda labels, epoch: rejection_loop_triplets(labels, rng=np.random.default_rng(epoch)),
    ],
    ids=["vectorised", "rejection_loop"],
)
def test_positives_and_negatives_are_uniform(sampler):
    # Classes of 3, 4 and 6 items (unequal on purpose). Over many epochs each anchor's
    # positive must be uniform over the other members of its class, and its negative
    # uniform over all indices of other classes (not over other classes first).
    labels = torch.tensor([0] * 3 + [1] * 4 + [2] * 6)
    n, epochs = len(labels), 600
    draws = torch.stack([sampler(labels, epoch) for epoch in range(epochs)])  # [E, N, 3]
    for anchor in range(n):
        same = (labels == labels[anchor]).nonzero().flatten()
        others = same[same != anchor]
        pos_counts = torch.bincount(draws[:, anchor, 1], minlength=n)[others]
        assert pos_counts.sum() == epochs
        assert chisquare(pos_counts.numpy()).pvalue > 1e-4
    # Negatives pooled per class: anchors of class 0 see 10 candidates equally often.
    for cls in range(3):
        rows = draws[:, labels == cls, 2].flatten()
        counts = torch.bincount(rows, minlength=n)[labels != cls]
        assert counts.sum() == rows.numel()
        assert chisquare(counts.numpy()).pvalue > 1e-4


@pytest.mark.parametrize(
    "labels,match",
    [
        (torch.zeros(5, dtype=torch.long), "two classes"),
        (torch.tensor([0, 0, 1]), "two members"),
        (torch.tensor([0.0, 1.0]), "integer"),
    ],
)
def test_offline_triplets_rejects_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        offline_triplets(labels, generator=_gen(0))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("p,k", [(2, 2), (4, 3), (10, 5)])
def test_pk_batches_structure(p, k, seed):
    labels = _labels(600, 10, seed)
    batches = pk_batches(labels, classes_per_batch=p, samples_per_class=k, generator=_gen(seed))
    assert len(batches) == 600 // (p * k)
    for batch in batches:
        assert batch.dtype == torch.long and batch.shape == (p * k,)
        per_class = labels[batch].reshape(p, k)
        assert (per_class == per_class[:, :1]).all()  # class-contiguous groups of K
        assert per_class[:, 0].unique().numel() == p  # P distinct classes
        assert batch.unique().numel() == p * k  # no repeats: every class has >= K items


def test_pk_batches_cover_the_epoch():
    # Balanced classes: consecutive chunks of a per-class shuffle, so an epoch of
    # N // (P K) batches sees most indices exactly once.
    labels = torch.arange(1000) % 10
    batches = pk_batches(labels, classes_per_batch=5, samples_per_class=4, generator=_gen(0))
    seen = torch.cat(batches)
    assert seen.unique().numel() > 0.6 * len(labels)


def test_pk_batches_small_class_with_replacement():
    labels = torch.tensor([0] * 20 + [1] * 20 + [2] * 2)
    batches = pk_batches(labels, classes_per_batch=3, samples_per_class=4, generator=_gen(1))
    for batch in batches:
        small = batch[labels[batch] == 2]
        assert small.numel() == 4 and set(small.tolist()) <= {40, 41}


def test_pk_batches_reproducible_and_seed_dependent():
    labels = _labels(300, 6, 0)

    def draw(seed):
        return torch.stack(
            pk_batches(labels, classes_per_batch=3, samples_per_class=4, generator=_gen(seed))
        )

    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


def test_pk_batches_tiny_dataset_still_gives_one_batch():
    labels = torch.tensor([0, 0, 1, 1])
    batches = pk_batches(labels, classes_per_batch=2, samples_per_class=3, generator=_gen(0))
    assert len(batches) == 1 and batches[0].shape == (6,)


@pytest.mark.parametrize(
    "p,k,match",
    [(4, 2, "classes_per_batch"), (0, 2, "classes_per_batch"), (2, 1, "samples_per_class")],
)
def test_pk_batches_rejects_bad_sizes(p, k, match):
    with pytest.raises(ValueError, match=match):
        pk_batches(
            torch.arange(12) % 3, classes_per_batch=p, samples_per_class=k, generator=_gen(0)
        )
