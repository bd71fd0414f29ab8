"""The rank a data-parallel worker is, and the helpers a method's loss calls so that it sees the
global batch, with the gradients of one process on the whole batch.

Under ``fit.strategy: ddp`` every rank draws the same *global* batch and the same augmentations
(one generator, seeded alike on every rank); the encoder runs only on the rank's equal shard of
rows (:func:`local_forward`), and its outputs are gathered with gradient
(:func:`gather_with_grad`), so that the unchanged losses see the global batch, in the order one
process would. Every rank then computes the same global loss; the gather's backward sums the
gradients that the ``W`` ranks send to each shard (``W`` times the one-process gradient) and
DDP's average over the ranks divides by ``W`` again, so each parameter gets exactly the
one-process gradient.

Outside a data-parallel worker (one process) every helper is the identity, and the code paths
are those of before.

Random draws *inside* the forward (dropout, wav2vec's span masks and Gumbel noise) come from
:func:`rank_generator`, a per-rank stream derived from the shared one without advancing it: the
ranks' draws are independent (not the same dropout mask on every shard), at the price of not
being those of one process on the global batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel fit: global ``rank`` of ``world_size``, and
    ``local_rank`` on its machine (its GPU index on CUDA)."""

    rank: int
    world_size: int
    local_rank: int = 0

    def shard(self, rows: int) -> slice:
        """This rank's rows of a global batch of ``rows`` (equal contiguous shards, rank-major).

        Raises:
            ValueError: when ``rows`` does not split into ``world_size`` equal shards.
        """
        if rows % self.world_size:
            raise ValueError(
                f"a global batch of {rows} rows does not split into {self.world_size} equal "
                "shards: choose a batch size divisible by fit.devices x fit.nodes")
        size = rows // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)


_CURRENT: ContextVar[Ranks | None] = ContextVar("contrastive_signals_ranks", default=None)


def current_ranks() -> Ranks | None:
    """The ranks of the data-parallel worker this code runs in; ``None`` in one process."""
    return _CURRENT.get()


def _parallel() -> Ranks | None:
    """The ranks when there are several, else ``None`` (one process: every helper is the
    identity)."""
    ranks = _CURRENT.get()
    return ranks if ranks is not None and ranks.world_size > 1 else None


@contextmanager
def ranks_context(ranks: Ranks) -> Iterator[Ranks]:
    """Run a block as rank ``ranks.rank`` (the data-parallel worker sets it around ``fit``)."""
    token = _CURRENT.set(ranks)
    try:
        yield ranks
    finally:
        _CURRENT.reset(token)


def gather_with_grad(t: Tensor) -> Tensor:
    """``t`` ``[n, ...]`` of every rank, concatenated rank-major: ``[world_size * n, ...]``.

    Differentiable: the backward pass sums, over the ranks, the gradients that reach each
    rank's rows (a reduce-scatter), so that the loss each rank computes on the gathered batch
    back-propagates into every shard (see the module docstring for the scale). The identity in
    one process. The one place that names torch's gather (``torch.distributed.nn.functional.
    all_gather`` is deprecated in torch 2.14 in favour of this functional collective).
    """
    if _parallel() is None:
        return t
    import torch.distributed as dist
    from torch.distributed import _functional_collectives as collectives

    gathered = collectives.all_gather_single(t.contiguous(), 0, dist.group.WORLD)
    return collectives.wait_tensor(gathered)


def shard(t: Tensor | None) -> Tensor | None:
    """This rank's rows of ``t`` ``[B, ...]`` (``B / world_size`` of them); ``t`` itself in one
    process; ``None`` stays ``None``."""
    ranks = _parallel()
    if ranks is None or t is None:
        return t
    return t[ranks.shard(t.shape[0])]


def rank_generator(generator: torch.Generator) -> torch.Generator:
    """A generator for this rank's own draws, seeded from the state of ``generator`` (shared by
    all ranks) and the rank, without advancing ``generator``; ``generator`` itself in one
    process."""
    ranks = _parallel()
    if ranks is None:
        return generator
    digest = hashlib.blake2b(generator.get_state().numpy().tobytes(),
                             key=ranks.rank.to_bytes(8, "little"), digest_size=8).digest()
    seed = int.from_bytes(digest, "little") & ((1 << 63) - 1)
    return torch.Generator(device=generator.device).manual_seed(seed)


def _gather_outputs(output: Any) -> Any:
    if isinstance(output, Tensor):
        return gather_with_grad(output)
    if not isinstance(output, tuple | list):
        raise TypeError(f"local_forward gathers tensors or tuples of tensors, got {type(output)}")
    if output and all(isinstance(o, Tensor) and o.dtype == output[0].dtype for o in output):
        return type(output)(gather_many_with_grad(list(output)))
    return type(output)(_gather_outputs(o) for o in output)


def gather_many_with_grad(tensors: list[Tensor]) -> list[Tensor]:
    """:func:`gather_with_grad` of each of ``tensors`` (one dtype; each ``[n_i, ...]``) in one
    collective: every rank's tensors are flattened into one buffer, gathered once and split
    back, so a loss that gathers several outputs waits for the other ranks once per pass, not
    once per output (each wait costs the slower rank's lead)."""
    ranks = _parallel()
    if ranks is None:
        return tensors
    sizes = [t.numel() for t in tensors]
    gathered = gather_with_grad(torch.cat([t.reshape(-1) for t in tensors]))
    parts = gathered.view(ranks.world_size, -1).split(sizes, dim=1)
    return [part.reshape(-1, *t.shape[1:]) for part, t in zip(parts, tensors, strict=True)]


def local_forward(fn: Callable[..., Any], *inputs: Tensor | None,
                  generator: torch.Generator | None = None) -> Any:
    """``fn`` on this rank's rows of the global-batch ``inputs`` (each ``[B, ...]``, or
    ``None``), its output (a tensor ``[b, ...]`` or a tuple of them) gathered with gradient
    into the global ``[B, ...]``; ``generator``, when given, reaches ``fn`` as its last
    argument (as :func:`rank_generator` of it on several ranks).

    In one process this is exactly ``fn(*inputs[, generator])``.
    """
    extra = () if generator is None else (rank_generator(generator),)
    if _parallel() is None:
        return fn(*inputs, *extra)
    return _gather_outputs(fn(*(shard(t) for t in inputs), *extra))


def local_forward_rows(fn: Callable[..., Any], *inputs: Tensor) -> Any:
    """:func:`local_forward` (without a generator) for any number of rows ``R >= 1``, not only
    multiples of the world size: on several ranks the inputs ``[R, ...]`` are padded to one by
    repeating their last row, and the padding's outputs are dropped after the gather (they get
    no gradient). For a loss's inner passes whose row count the data decide (e.g. pairs
    within groups). In one process this is exactly ``fn(*inputs)``."""
    ranks = _parallel()
    if ranks is None:
        return fn(*inputs)
    rows = inputs[0].shape[0]
    pad = -rows % ranks.world_size
    if pad:
        inputs = tuple(torch.cat([t, t[-1:].expand(pad, *t.shape[1:])]) for t in inputs)
    output = local_forward(fn, *inputs)
    if isinstance(output, Tensor):
        return output[:rows]
    return type(output)(o[:rows] for o in output)


def mean_over_ranks(value: Tensor, weight: Tensor | None = None) -> Tensor:
    """The (``weight``-weighted) mean over ranks of a per-rank statistic ``value`` (any shape;
    ``weight`` a scalar count, e.g. the rank's number of masked steps when ``value`` is a mean
    over them), with gradient: what one process computes on the global batch when each rank's
    ``value`` is the statistic of its shard. ``value`` itself in one process."""
    if _parallel() is None:
        return value
    values = gather_with_grad(value.unsqueeze(0))
    if weight is None:
        return values.mean(0)
    weights = gather_with_grad(weight.detach().reshape(1).to(values.dtype))
    shape = (-1,) + (1,) * value.dim()
    return (values * weights.view(shape)).sum(0) / weights.sum()


class DataParallel(nn.parallel.DistributedDataParallel):
    """torch's DDP with the wrapped module's attributes reachable through it (methods call
    e.g. ``net.decode`` on the model fit hands them)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


def data_parallel_model(model: nn.Module, *, every_parameter_used: bool = False) -> nn.Module:
    """``model`` as the loss should call it: wrapped in :class:`DataParallel` inside a
    data-parallel worker (gradients averaged over the ranks during backward), else itself.

    ``every_parameter_used``: the loss gives every parameter a gradient at every step (a
    method's ``uses_every_parameter``), so DDP need not search the graph for unused ones
    after each forward (the denoising HVAE: about 8 % of a step on one CPU thread). Otherwise
    it searches (heads or branches a step may skip)."""
    ranks = current_ranks()
    if ranks is None:
        return model
    device = next(model.parameters()).device
    return DataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                        find_unused_parameters=not every_parameter_used)
