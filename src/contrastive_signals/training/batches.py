"""Mini-batch iterators over in-memory tensors, driven by an explicit generator, and the
iteration budget (a number of optimiser steps rather than of epochs)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator

import torch

Batch = tuple[torch.Tensor, ...]
BatchesFn = Callable[[int, torch.Generator], Iterable[Batch]]


def minibatches(*tensors: torch.Tensor, order: torch.Tensor, batch_size: int,
                drop_last: bool = True) -> Iterator[Batch]:
    """Yield aligned slices of ``tensors`` (each ``[N, ...]``) in the order ``order`` ``[N]``;
    ``drop_last`` skips the tail batch shorter than ``batch_size`` (when ``N >= batch_size``)."""
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(f"tensors must share their first dimension, got {[t.shape for t in tensors]}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def shuffled_minibatches(
    *tensors: torch.Tensor, batch_size: int, generator: torch.Generator, drop_last: bool = True
) -> Iterator[Batch]:
    """Yield aligned slices of ``tensors`` (each ``[N, ...]``) in a random order.

    Slicing in-memory tensors avoids DataLoader worker overhead, which dominates for the
    small datasets here. ``drop_last`` keeps batch statistics (BatchNorm, contrastive
    negatives) from being computed on a tiny tail batch.
    """
    order = torch.randperm(tensors[0].shape[0], generator=generator)
    yield from minibatches(*tensors, order=order, batch_size=batch_size, drop_last=drop_last)


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


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Full batches of ``min(batch_size, n)`` items in one pass over ``n`` items (at least 1)."""
    return max(1, n // min(batch_size, n))


def iteration_budget(batches: BatchesFn, *, iterations: int, per_epoch: int
                     ) -> tuple[int, BatchesFn]:
    """A budget in optimiser steps, as TS2Vec counts it: ``(epochs, batches_fn)`` where each
    epoch takes at most ``per_epoch`` batches of ``batches(epoch, generator)`` and all epochs
    together yield exactly ``iterations`` batches (the last epoch is cut short)."""
    if iterations < 1 or per_epoch < 1:
        raise ValueError(f"iterations and per_epoch must be >= 1, got {iterations}, {per_epoch}")

    def limited(epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        return itertools.islice(batches(epoch, generator),
                                min(per_epoch, iterations - epoch * per_epoch))

    return math.ceil(iterations / per_epoch), limited


TS2VEC_BATCH_SIZE = 8  # the batch TS2Vec's step budget (200 / 600 steps) is counted in


def default_iterations(x: torch.Tensor, batch_size: int = TS2VEC_BATCH_SIZE) -> int:
    """TS2Vec's default budget when none is given: 200 optimiser steps of 8 series for a
    training array ``x`` ``[N, T, C]`` of at most 100,000 values (padding included), 600 for a
    larger one. Another ``batch_size`` gets the same number of series drawn (1,600 or 4,800),
    in ``ceil(steps * 8 / batch_size)`` steps. The count uses ``batch_size``, not the smaller
    batches of a set with fewer series, so TS2Vec's 200 steps stay 200 on a tiny set."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps = 200 if x.numel() <= 100_000 else 600
    return math.ceil(steps * TS2VEC_BATCH_SIZE / batch_size)
