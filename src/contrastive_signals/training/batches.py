"""Mini-batch iterators over in-memory tensors, driven by an explicit generator."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def shuffled_minibatches(
    *tensors: torch.Tensor, batch_size: int, generator: torch.Generator, drop_last: bool = True
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield aligned slices of ``tensors`` (each ``[N, ...]``) in a random order.

    Slicing in-memory tensors avoids DataLoader worker overhead, which dominates for the
    small datasets here. ``drop_last`` keeps batch statistics (BatchNorm, contrastive
    negatives) from being computed on a tiny tail batch.
    """
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(f"tensors must share their first dimension, got {[t.shape for t in tensors]}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    order = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def noisy_version_batches(
    clean: torch.Tensor, noisy: torch.Tensor, *, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of ``(clean [b, 1, ...], noisy [b, 1, ...], version [b])`` batches in a
    random order (full batches only), each image's noisy version drawn per image.

    Args:
        clean: ``[M, ...]`` clean images.
        noisy: ``[V, M, ...]``, ``V`` noisy versions of every image (e.g. one per number of
            CT views); ``version`` is the index drawn for each image of a batch.
    """
    if noisy.ndim != clean.ndim + 1 or noisy.shape[1:] != clean.shape:
        raise ValueError(f"noisy must be [V, *clean.shape] = [V, {', '.join(map(str, clean.shape))}],"
                         f" got {tuple(noisy.shape)}")
    count = clean.shape[0]
    for (idx,) in shuffled_minibatches(torch.arange(count), batch_size=batch_size,
                                       generator=generator):
        version = torch.randint(0, noisy.shape[0], (idx.shape[0],), generator=generator)
        yield clean[idx][:, None], noisy[version, idx][:, None], version
