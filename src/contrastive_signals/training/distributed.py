"""``fit.strategy: ddp``: the same ``fit`` in ``devices`` processes per machine (``nodes``
machines), launched from inside the calling process by torch's elastic launcher (what
``torchrun`` runs), with PyTorch's DistributedDataParallel averaging the gradients.

The calling process (a Kedro node) stays the only one that saves and logs: it sends the
training job to the workers (cloudpickled: batch iterators are closures), waits, and gets back
the trained weights, the history and the method's state from the local rank 0. Each worker is
a fresh ``spawn``-ed interpreter that joins a c10d rendezvous (on 127.0.0.1 with a free port,
or ``fit.rdzv_endpoint`` across machines), sets its share of the CPU threads, and runs
:func:`~contrastive_signals.training.fit.fit` as its rank (see :mod:`.ranks` for how methods see
the global batch). No restart: a failing rank stops all of them, and its own exception (type
and message) is raised here.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import pickle
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import torch
from torch import nn

from contrastive_signals.training.device import available_cores, resolve_device
from contrastive_signals.training.fit import (
    BatchesFn,
    FitConfig,
    FitHooks,
    FitResult,
    LossFn,
    ValidateFn,
    fit,
)
from contrastive_signals.training.ranks import Ranks, current_ranks, ranks_context
from contrastive_signals.training.spawned_jobs import MAIN_GUARD_HINT, read_job, write_job

logger = logging.getLogger(__name__)

LR_SCALING = ("none", "linear", "sqrt")
_CARRIED: list[tuple[str, str]] = []


def carry_context(module: str, name: str) -> None:
    """Have every rank of a data-parallel fit see the caller's value of the context variable
    ``name`` of ``module`` (context variables do not reach spawned processes by themselves),
    e.g. a checkpoint policy that ``fit`` reads; its value must pickle."""
    if (module, name) not in _CARRIED:
        _CARRIED.append((module, name))


# the checkpoint a launching fit opened (training/checkpoint.py): read by every rank
carry_context("contrastive_signals.training.checkpoint", "RANK_CHECKPOINT")


def _carried_values() -> list[tuple[str, str, Any]]:
    return [(module, name, getattr(importlib.import_module(module), name).get(None))
            for module, name in _CARRIED]


def world_size(config: FitConfig) -> int:
    """Ranks of a fit: ``devices`` per machine times ``nodes`` machines (1 for ``single``)."""
    return config.devices * config.nodes if config.strategy == "ddp" else 1


def learning_rate_multiplier(config: FitConfig) -> float:
    """``fit.lr_scaling`` over the world size ``W``: ``none`` 1, ``linear`` ``W``, ``sqrt``
    ``sqrt(W)`` (for a global batch grown ``W``-fold with the ranks; see docs/scaling.md)."""
    world = world_size(config)
    return {"none": 1.0, "linear": float(world), "sqrt": math.sqrt(world)}[config.lr_scaling]


def backend_for(config: FitConfig) -> str:
    """``fit.backend``, ``auto`` resolved: nccl when the fit runs on CUDA, gloo otherwise."""
    if config.backend != "auto":
        return config.backend
    return "nccl" if resolve_device(config.device).type == "cuda" else "gloo"


def check_launch(config: FitConfig) -> None:
    """What only this machine can tell: enough GPUs for ``devices`` on CUDA."""
    device = resolve_device(config.device)
    if device.type == "cuda" and config.devices > torch.cuda.device_count():
        raise ValueError(f"{config.name}: fit.devices={config.devices} but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a one-machine rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class _Job:
    """What every fit worker gets (cloudpickled once, so shared objects stay shared: the loss's
    method is the hooks object, ``parameters`` are the model's)."""

    model: nn.Module
    loss_fn: LossFn
    batches: BatchesFn
    config: FitConfig
    validate: ValidateFn | None
    parameters: list[nn.Parameter] | None
    hooks: FitHooks | None
    rng_state: tuple[Any, Any, Any]


def _cpu_threads(local_world: int) -> int:
    """This rank's share of the machine's cores (torchrun sets it; elastic_launch does not)."""
    return max(1, available_cores() // local_world)


def _seed_worker(rng_state: tuple[Any, Any, Any], config: FitConfig, rank: int) -> None:
    """The parent's global random state on rank 0 (global draws, e.g. an encoder's dropout,
    continue as in one process), an independent one per other rank."""
    torch_state, numpy_state, python_state = rng_state
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)  # noqa: NPY002 - global state of third-party layers
    random.setstate(python_state)
    if rank:
        torch.manual_seed(config.seed * 1_000_003 + rank)


def _fit_rank(job: _Job) -> tuple[dict[str, torch.Tensor], dict, int, Any] | None:
    """One rank's fit (inside the process group); local rank 0 returns ``(state_dict, history,
    best_epoch, hooks)``, the others ``None``."""
    ranks = current_ranks()
    _seed_worker(job.rng_state, job.config, ranks.rank)
    model = job.model
    if job.config.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    config = job.config if ranks.rank == 0 else replace(job.config, progress=False)
    result = fit(model, loss_fn=job.loss_fn, batches=job.batches, config=config,
                 validate=job.validate, parameters=job.parameters, hooks=job.hooks)
    if ranks.local_rank:
        return None
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    return state, result.history, result.best_epoch, job.hooks


def _worker(payload: str) -> bytes:
    """One rank of :func:`run_on_ranks`: read the job from the file ``payload``, set threads
    and device, join the process group, run ``fn(*args)`` as this rank and return its result
    cloudpickled. An exception is saved (cloudpickled, with its time) for the launcher before
    it propagates."""
    import torch.distributed as dist

    fn, args, config, errors, log_level, carried = read_job(payload)
    for module, name, value in carried:
        getattr(importlib.import_module(module), name).set(value)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    try:
        logging.basicConfig(level=log_level if local_rank == 0 else logging.WARNING,
                            format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")
        torch.set_num_threads(_cpu_threads(int(os.environ["LOCAL_WORLD_SIZE"])))
        if resolve_device(config.device).type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend_for(config))
        try:
            ranks = Ranks(rank=rank, world_size=dist.get_world_size(), local_rank=local_rank)
            with ranks_context(ranks):
                result = fn(*args)
        finally:
            dist.destroy_process_group()
    except BaseException as error:
        _save_error(errors, rank, error)
        raise
    return cloudpickle.dumps(result)


def _save_error(folder: str, rank: int, error: BaseException) -> None:
    try:
        blob = cloudpickle.dumps((time.time(), error))
    except Exception:  # noqa: BLE001 - an unpicklable exception: keep its type name and text
        blob = cloudpickle.dumps((time.time(), RuntimeError(f"{type(error).__name__}: {error}")))
    (Path(folder) / f"rank{rank}.pkl").write_bytes(blob)


def _root_cause(failure: Exception, folder: str) -> BaseException:
    """The first exception a rank raised (saved by :func:`_worker`), or a ``RuntimeError``
    with the message torch recorded for the first failed rank (e.g. on another machine)."""
    saved = []
    for path in Path(folder).glob("rank*.pkl"):
        try:
            saved.append(pickle.loads(path.read_bytes()))
        except Exception:  # noqa: BLE001, S110 - unreadable: fall back to torch's record
            continue
    if saved:
        return min(saved, key=lambda item: item[0])[1]
    failures = getattr(failure, "failures", {})
    messages = []
    for rank, record in sorted(failures.items()):
        message = record.message
        text = message.get("message", message) if isinstance(message, dict) else message
        if not text or "elastic/errors.html" in text:  # torch's placeholder: no traceback
            text = f"exit code {record.exitcode}"
        messages.append(f"rank {rank}: {text}")
    # No rank of this machine saved an exception. Exit codes > 0 without one: each died
    # while its interpreter started, before the job ran (a signal gives a code < 0).
    started = failures and all(record.exitcode > 0 for record in failures.values())
    hint = f"; no rank reached the training code: {MAIN_GUARD_HINT}" if started else ""
    return RuntimeError("data-parallel fit failed: " + "; ".join(messages or [str(failure)])
                        + hint)


def launch_config(config: FitConfig) -> Any:
    """torch's ``LaunchConfig`` for ``config``: ``devices`` workers per node, ``nodes`` nodes,
    c10d rendezvous on ``rdzv_endpoint`` (default 127.0.0.1 with a free port), spawn, no
    restart."""
    from torch.distributed.launcher.api import LaunchConfig

    endpoint = config.rdzv_endpoint or f"127.0.0.1:{free_port()}"
    host = endpoint.rsplit(":", 1)[0]
    local = host in ("127.0.0.1", "localhost")
    # one id for all machines of a run: derived from what they all share
    run_id = (f"{config.name}-{config.seed}" if config.rdzv_endpoint
              else f"{config.name}-{uuid.uuid4().hex[:8]}")
    return LaunchConfig(
        min_nodes=config.nodes, max_nodes=config.nodes, nproc_per_node=config.devices,
        rdzv_backend="c10d", rdzv_endpoint=endpoint, run_id=run_id, max_restarts=0,
        start_method="spawn", monitor_interval=0.1, local_addr="127.0.0.1" if local else None,
        rdzv_configs={"join_timeout": 300})  # machines that never join: fail after 5 min


def run_on_ranks(fn: Callable[..., Any], *args: Any, config: FitConfig) -> dict[int, Any]:
    """``fn(*args)`` on every rank of ``config`` (``devices`` processes per node, ``nodes``
    nodes), each inside the process group with its :class:`~.ranks.Ranks` set; returns
    ``{local_rank: result}`` of this machine's ranks. ``fn`` and ``args`` travel cloudpickled.

    Raises:
        the first failing rank's own exception (chained from torch's ``ChildFailedError``).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    check_launch(config)
    log_level = logging.getLogger("contrastive_signals").getEffectiveLevel()
    # the job and the ranks' exceptions
    with tempfile.TemporaryDirectory(prefix="ddp-launch-", ignore_cleanup_errors=True) as errors:
        job = write_job(errors, (fn, args, config, errors, log_level, _carried_values()))
        try:
            results = elastic_launch(launch_config(config), _worker)(job)
        except ChildFailedError as failure:
            raise _root_cause(failure, errors) from failure
    return {rank: cloudpickle.loads(value) for rank, value in results.items()}


def launch_fit(model: nn.Module, *, loss_fn: LossFn, batches: BatchesFn, config: FitConfig,
               validate: ValidateFn | None = None,
               parameters: Iterable[nn.Parameter] | None = None,
               hooks: FitHooks | None = None) -> FitResult:
    """:func:`~contrastive_signals.training.fit.fit` with ``config.strategy == "ddp"``: the
    same arguments, trained by ``devices x nodes`` ranks; ``model`` (and ``hooks``' state) are
    updated in place from rank 0 and returned as fit returns them.

    Raises:
        the first failing rank's own exception (chained from torch's ``ChildFailedError``).
    """
    config = replace(config, learning_rate=config.learning_rate * learning_rate_multiplier(config))
    job = _Job(model=model, loss_fn=loss_fn, batches=batches, config=config, validate=validate,
               parameters=None if parameters is None else list(parameters), hooks=hooks,
               rng_state=(torch.get_rng_state(), np.random.get_state(),  # noqa: NPY002
                          random.getstate()))
    logger.info("%s: data-parallel fit on %d rank(s) (%d per node, %d node(s), %s)",
                config.name, world_size(config), config.devices, config.nodes,
                backend_for(config))
    results = run_on_ranks(_fit_rank, job, config=config)
    state, history, best_epoch, trained_hooks = next(
        value for value in results.values() if value is not None)
    model.load_state_dict(state)
    if hooks is not None and trained_hooks is not None:
        vars(hooks).update(vars(trained_hooks))  # method state (schedules, weight averages)
    return FitResult(model=model.eval(), history=history, best_epoch=best_epoch)
