"""Device choice and reproducibility helpers."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; any other string is passed to torch.

    Raises:
        ValueError: when CUDA is asked for explicitly but is not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' was requested but CUDA is not available")
    return resolved


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch for code outside this package (e.g. third-party layers).

    Library code here takes explicit generators; nodes call this once before training so
    cuDNN/BLAS-level nondeterminism and any third-party global draws are pinned too.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeding third-party global state on purpose
    torch.manual_seed(seed)


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Run a block with torch's global generators (CPU and every CUDA device) seeded with
    ``seed``, for layers that draw from them (``nn.Dropout`` in some encoders), and restore
    the caller's state afterwards: the block is reproducible whatever ran before it, and
    nothing outside it sees a changed global state."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``num_threads`` intra-op CPU threads, restoring the previous count
    afterwards; ``None`` leaves the setting alone.

    Small models on small batches gain little from intra-op parallelism, and on a busy
    machine every parallel op waits for its slowest (descheduled) thread.
    """
    if num_threads is None:
        yield
        return
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one: a container
    or ``taskset`` limit, not the machine's count)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1
