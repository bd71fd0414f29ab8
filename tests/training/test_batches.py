"""Mini-batch iterators: noisy versions drawn per image."""

import pytest
import torch

from contrastive_signals.training.batches import noisy_version_batches


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
