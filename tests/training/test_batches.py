"""Mini-batch iterators (noisy versions drawn per image), the iteration budget and
TS2Vec's default budget."""

import pytest
import torch

from contrastive_signals.training.batches import (
    batches_per_epoch,
    default_iterations,
    iteration_budget,
    minibatches,
    noisy_version_batches,
    shuffled_minibatches,
)


def _data():
    clean = torch.arange(10.0)[:, None, None].expand(10, 2, 2).contiguous()  # [M, 2, 2]
    noisy = torch.stack([clean + 100 * (v + 1) for v in range(3)])             # [V, M, 2, 2]
    return clean, noisy


def test_full_batches_pair_each_image_with_its_drawn_noisy_version():
    clean, noisy = _data()
    batches = list(noisy_version_batches(clean, noisy, batch_size=4,
                                         generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 2  # 10 images: two full batches of 4, the tail dropped
    seen = torch.cat([c[:, 0, 0, 0] for c, _, _ in batches])
    assert len(set(seen.tolist())) == 8
    for c, n, version in batches:
        assert c.shape == n.shape == (4, 1, 2, 2) and version.shape == (4,)
        torch.testing.assert_close(n, c + 100 * (version + 1).float()[:, None, None, None])


def test_same_generator_same_batches():
    clean, noisy = _data()
    a, b = (list(noisy_version_batches(clean, noisy, batch_size=3,
                                       generator=torch.Generator().manual_seed(4)))
            for _ in range(2))
    for x, y in zip(a, b, strict=True):
        for s, t in zip(x, y, strict=True):
            torch.testing.assert_close(s, t)


def test_mismatched_noisy_stack_is_rejected():
    clean, noisy = _data()
    with pytest.raises(ValueError, match=r"noisy must be \[V, \*clean.shape\]"):
        next(noisy_version_batches(clean, noisy[:, :5], batch_size=2,
                                   generator=torch.Generator()))




def test_minibatches_follow_the_order_and_drop_the_tail():
    x = torch.arange(7)
    batches = [b for (b,) in minibatches(x, order=torch.tensor([6, 5, 4, 3, 2, 1, 0]),
                                         batch_size=3)]
    assert [b.tolist() for b in batches] == [[6, 5, 4], [3, 2, 1]]
    assert len(list(minibatches(x, order=torch.arange(7), batch_size=3, drop_last=False))) == 3
    with pytest.raises(ValueError, match="first dimension"):
        list(minibatches(x, torch.arange(6), order=torch.arange(7), batch_size=2))


def test_shuffled_minibatches_are_the_generators_permutation():
    x = torch.arange(6)
    (first, *_), order = shuffled_minibatches(x, batch_size=6, generator=torch.Generator(
        ).manual_seed(3)), torch.randperm(6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first[0], order)


def test_the_budget_gives_exactly_the_iterations():
    calls = []

    def batches(epoch, generator):
        calls.append(epoch)
        return iter([(torch.tensor(epoch),)] * 4)

    epochs, limited = iteration_budget(batches, iterations=10, per_epoch=4)
    assert epochs == 3
    counts = [len(list(limited(epoch, None))) for epoch in range(epochs)]
    assert counts == [4, 4, 2] and calls == [0, 1, 2]
    assert batches_per_epoch(10, 4) == 2 and batches_per_epoch(3, 8) == 1
    with pytest.raises(ValueError, match="iterations"):
        iteration_budget(batches, iterations=0, per_epoch=1)


def test_default_iterations_follow_ts2vec():
    assert default_iterations(torch.zeros(50, 150, 1)) == 200
    assert default_iterations(torch.zeros(100, 1000, 1)) == 200  # exactly 100,000 values
    assert default_iterations(torch.zeros(101, 1000, 1)) == 600


def test_default_iterations_keep_ts2vecs_series_budget_at_other_batch_sizes():
    small, large = torch.zeros(50, 150, 1), torch.zeros(101, 1000, 1)
    assert default_iterations(small, 8) == 200 and default_iterations(large, 8) == 600
    assert default_iterations(small, 16) == 100 and default_iterations(large, 16) == 300
    assert default_iterations(small, 12) == 134  # 1,600 series, rounded up to whole steps
    with pytest.raises(ValueError, match="batch_size"):
        default_iterations(small, 0)
