"""Checkpoints of the one training loop, so that a killed run resumes where it stopped.

The caller (a Kedro hook, a script) opens a *scope* around the code that trains, naming it
(the node) and giving a fingerprint of what determines the result (the node's parameters).
Each :func:`~contrastive_signals.training.fit.fit` call inside the scope gets its own file,
``<folder>/<scope key>/fit<k>.pt`` for the k-th call, written atomically at the end of an
epoch when the interval has passed, and once more, marked finished, when the fit ends (so a
rerun after a kill later in the same node skips the fits that already completed).

A checkpoint holds everything the loop's next epoch depends on: weights, optimiser moments,
the loop's generator and torch's global generator (dropout draws from it), the history,
early-stopping state and the method's own state (schedules, weight averages). Resuming it
therefore continues the very same run: on the CPU the weights at the end are bit-identical to
an uninterrupted run's.

A checkpoint is used only when its fingerprint (the scope's parameters, the fit settings and
the model's initial weights) equals the run's; otherwise the log says which part differs and
the fit starts over. A lock file keeps two identical runs at once from sharing one file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from contrastive_signals.training.ranks import current_ranks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointPolicy:
    """When to write checkpoints and whether to resume from them.

    ``every_epochs``: write after every so many epochs; ``every_minutes``: write at the first
    epoch end after so many minutes of training since the last write. Either may be ``None``;
    with both ``None`` only the finished-fit marker is written. ``resume``: read an existing
    checkpoint (``False`` starts over and overwrites it).
    """

    folder: Path
    every_epochs: int | None = None
    every_minutes: float | None = 2.0
    resume: bool = True

    def __post_init__(self) -> None:
        if self.every_epochs is not None and (isinstance(self.every_epochs, bool)
                                              or self.every_epochs < 1):
            raise ValueError(f"every_epochs must be an integer >= 1 or null, got "
                             f"{self.every_epochs!r}")
        if self.every_minutes is not None and not self.every_minutes > 0:
            raise ValueError(f"every_minutes must be > 0 or null, got {self.every_minutes!r}")


@dataclass
class _Scope:
    policy: CheckpointPolicy
    key: str
    fingerprint: str
    calls: int = 0
    opened: list[Path] = field(default_factory=list)


_SCOPE: ContextVar[_Scope | None] = ContextVar("checkpoint_scope", default=None)


@dataclass(frozen=True)
class CheckpointSpec:
    """One fit's checkpoint as a data-parallel launcher hands it to its ranks: the parent
    process opened it (and holds its lock); every rank reads it, rank 0 alone writes it."""

    path: Path
    parts: dict[str, str]
    policy: CheckpointPolicy


# Set by the launching process around a data-parallel fit (carried into the ranks).
RANK_CHECKPOINT: ContextVar[CheckpointSpec | None] = ContextVar("rank_checkpoint", default=None)


def fingerprint_of(values: Any) -> str:
    """A short stable hash of JSON-like ``values`` (parameters); other objects by ``repr``."""
    text = json.dumps(values, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(f"tensor{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    elif isinstance(value, np.ndarray) and value.dtype != object:
        digest.update(f"array{value.shape}{value.dtype}".encode())
        digest.update(np.ascontiguousarray(value).view(np.uint8).reshape(-1))
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"seq{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, (str, int, float, bool)):
        digest.update(repr(value).encode())
    else:
        try:
            digest.update(pickle.dumps(value, protocol=5))
        except Exception:  # an unpicklable object: its type only
            digest.update(type(value).__qualname__.encode())


def content_fingerprint(values: Any) -> str:
    """A short hash of the *content* of a node's inputs (tensors and arrays by their bytes,
    containers recursively, other objects pickled), so that a checkpoint of a node is not
    reused on other data."""
    digest = hashlib.sha256()
    _feed(digest, values)
    return digest.hexdigest()[:16]


def scope_folder(folder: Path, key: str, fingerprint: str) -> Path:
    """The folder of one scope's checkpoints: ``<folder>/<key>/<fingerprint>`` (``key`` made
    safe as a file name), so runs with other parameters never share a file."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
    return Path(folder) / safe / fingerprint


def open_scope(policy: CheckpointPolicy, *, key: str, fingerprint: str) -> Token:
    """Checkpoint every later ``fit`` call under ``<folder>/<key>/`` until :func:`close_scope`
    (for callers such as hooks whose start and end are two calls; else use
    :func:`checkpointing`)."""
    return _SCOPE.set(_Scope(policy, key, fingerprint))


def close_scope(token: Token) -> None:
    """End the scope :func:`open_scope` opened; its files stay (see :func:`remove_checkpoints`)."""
    _SCOPE.reset(token)


@contextlib.contextmanager
def checkpointing(policy: CheckpointPolicy, *, key: str, fingerprint: str) -> Iterator[Path]:
    """Checkpoint every ``fit`` call made inside the block under ``<folder>/<key>/``; yields
    that folder. The files stay after the block: :func:`remove_checkpoints` deletes them once
    the caller has stored the result."""
    token = open_scope(policy, key=key, fingerprint=fingerprint)
    try:
        yield scope_folder(policy.folder, key, fingerprint)
    finally:
        close_scope(token)


@dataclass(frozen=True)
class ScopeSeat:
    """One ``fit`` call of the active scope handed to another process (it pickles): the call
    trains there with the checkpoint file it would have had here, ``fit<call>.pt``."""

    policy: CheckpointPolicy
    key: str
    fingerprint: str
    call: int


def reserve_fit_calls(count: int) -> list[ScopeSeat | None]:
    """The next ``count`` ``fit`` calls of the active scope, in order, for workers that train
    them elsewhere (so a rerun after a kill resumes each from its own file, in any layout);
    ``count`` ``None`` outside a scope."""
    scope = _SCOPE.get()
    if scope is None:
        return [None] * count
    first, scope.calls = scope.calls, scope.calls + count
    return [ScopeSeat(scope.policy, scope.key, scope.fingerprint, first + i) for i in range(count)]


@contextlib.contextmanager
def seated(seat: ScopeSeat | None) -> Iterator[None]:
    """In a worker: the first ``fit`` call inside the block checkpoints as the scope's call
    ``seat.call`` (nothing happens for ``None``)."""
    if seat is None:
        yield
        return
    token = _SCOPE.set(_Scope(seat.policy, seat.key, seat.fingerprint, calls=seat.call))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _remove_partial_writes(checkpoint: Path) -> None:
    """Delete the temporary files that a process killed while writing ``checkpoint`` left
    behind. Call only while holding its lock: every writer of ``checkpoint`` holds it."""
    for partial in checkpoint.parent.glob(f".{checkpoint.stem}.*.tmp"):
        partial.unlink(missing_ok=True)


def remove_checkpoints(folder: Path, key: str, fingerprint: str) -> None:
    """Delete the checkpoints of scope ``key`` with ``fingerprint`` (after its results were
    saved), with any half-written copy a kill left, except those another process still
    holds."""
    target = scope_folder(folder, key, fingerprint)
    for lock in sorted(target.glob("fit*.lock")):
        with open(lock, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # an identical run is training from it right now
            _remove_partial_writes(lock.with_suffix(".pt"))
            lock.with_suffix(".pt").unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
    for empty in (target, target.parent):
        with contextlib.suppress(OSError):
            empty.rmdir()


def _state_hash(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


class FitCheckpoint:
    """The checkpoint file of one ``fit`` call: what it must match, when it is due, and the
    atomic write. Built by :func:`open_fit_checkpoint`."""

    def __init__(self, path: Path, parts: dict[str, str], policy: CheckpointPolicy, *,
                 writer: bool = True):
        self.path, self.parts, self.policy, self.writer = path, parts, policy, writer
        self._lock = None
        self._last_write = time.monotonic()

    def acquire(self) -> bool:
        """Lock the file for this process; ``False`` when another process holds it. A
        half-written copy that a killed holder left is deleted."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path.with_suffix(".lock"), "w")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        _remove_partial_writes(self.path)
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def load(self) -> dict[str, Any] | None:
        """The saved state when it exists and matches this fit, else ``None`` (and the log
        says why a file was not used)."""
        if not self.policy.resume or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged file must not stop the run: start over
            logger.warning("checkpoint %s is unreadable (%s); training starts over",
                           self.path, error)
            return None
        differing = sorted(k for k, v in self.parts.items() if state["parts"].get(k) != v)
        if differing:
            logger.warning("checkpoint %s not used: its %s differ(s) from this run's; training "
                           "starts over", self.path, ", ".join(differing))
            return None
        return state

    def due(self, epoch: int) -> bool:
        """Whether a checkpoint is due after (0-based) ``epoch``."""
        every_epochs, every_minutes = self.policy.every_epochs, self.policy.every_minutes
        if every_epochs is not None and (epoch + 1) % every_epochs == 0:
            return True
        return every_minutes is not None and (
            time.monotonic() - self._last_write >= 60.0 * every_minutes)

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (plus this fit's fingerprint parts) atomically: a temporary file in
        the same folder, flushed to disk, then renamed over the old checkpoint. Nothing on a
        data-parallel rank other than 0 (``writer=False``)."""
        if not self.writer:
            return
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.",
                                             suffix=".tmp")  # named for the cleanup after a kill
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save({**state, "parts": self.parts}, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        self._last_write = time.monotonic()


def _log_other_parameters(folder: Path) -> None:
    """Say so when the node has checkpoints, but of other parameters (not used)."""
    others = sorted(p.name for p in folder.parent.glob("*") if p.is_dir() and p != folder)
    if others:
        logger.info("checkpoints in %s are of other parameters or inputs (%s) and are not "
                    "used; delete them to free the space", folder.parent, ", ".join(others))


def open_fit_checkpoint(model: nn.Module, fit_settings: Any) -> FitCheckpoint | None:
    """The checkpoint of the next ``fit`` call in the active scope (``None`` outside a scope
    or when another process holds the same checkpoint). ``fit_settings``: the fit's config
    dataclass, part of the fingerprint with the scope's parameters and the initial weights."""
    spec = RANK_CHECKPOINT.get()
    if spec is not None:  # a data-parallel rank: its launcher opened the checkpoint
        return FitCheckpoint(spec.path, spec.parts, spec.policy, writer=_is_rank_zero())
    scope = _SCOPE.get()
    if scope is None:
        return None
    index, scope.calls = scope.calls, scope.calls + 1
    settings = asdict(fit_settings)
    settings.pop("progress", None)  # how the loop reports does not change what it computes
    parts = {"parameters": scope.fingerprint, "fit settings": fingerprint_of(settings),
             "initial weights": _state_hash(model)}
    path = scope_folder(scope.policy.folder, scope.key, scope.fingerprint) / f"fit{index}.pt"
    if index == 0 and scope.policy.resume and not path.exists():
        _log_other_parameters(path.parent)
    checkpoint = FitCheckpoint(path, parts, scope.policy)
    if not checkpoint.acquire():
        logger.warning("%s is in use by another run with the same parameters; this fit trains "
                       "without checkpoints", path)
        return None
    return checkpoint


def _is_rank_zero() -> bool:
    ranks = current_ranks()
    return ranks is None or ranks.rank == 0


@contextlib.contextmanager
def handed_to_ranks(checkpoint: FitCheckpoint | None) -> Iterator[None]:
    """Around a data-parallel launch: the ranks' fits use ``checkpoint`` (read by all, written
    by rank 0) instead of opening their own."""
    if checkpoint is None:
        yield
        return
    token = RANK_CHECKPOINT.set(CheckpointSpec(checkpoint.path, checkpoint.parts,
                                               checkpoint.policy))
    try:
        yield
    finally:
        RANK_CHECKPOINT.reset(token)


def rng_states() -> dict[str, Any]:
    """torch's global generator states (CPU and each CUDA device): dropout draws from them."""
    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put torch's global generators back to ``states`` (from :func:`rng_states`), so a
    resumed fit draws its dropout masks as the uninterrupted one did."""
    torch.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
