"""One training loop for every training node.

The loop reads straight through: for each epoch, draw batches, move them to the device,
compute the loss under bf16 autocast on CUDA, step, then validate and maybe stop early.
What differs between tasks (which batches, which loss) comes in as two callables.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from contrastive_signals.training.checkpoint import (
    FitCheckpoint,
    handed_to_ranks,
    open_fit_checkpoint,
    restore_rng_states,
    rng_states,
)
from contrastive_signals.training.device import available_cores, resolve_device
from contrastive_signals.training.epoch_observers import report_epoch
from contrastive_signals.training.ranks import current_ranks, data_parallel_model

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]


@dataclass
class LossOutput:
    """A loss with named parts to log: ``total`` is minimised; each of ``parts`` (scalars,
    detached or not) is averaged over the epoch's steps into the history under its name."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class FitHooks(Protocol):
    """Method state that the loop steps (SWA averages, temperature or KL schedules)."""

    def on_step_end(self, model: nn.Module, step: int) -> None:
        """After optimiser step ``step`` (0-based, counted over the whole fit)."""

    def on_epoch_end(self, model: nn.Module, epoch: int) -> dict[str, float]:
        """After epoch ``epoch`` (before validation); values join the history."""


LossFn = Callable[[nn.Module, Batch, torch.Generator], "torch.Tensor | LossOutput"]
BatchesFn = Callable[[int, torch.Generator], Iterable[Batch]]
ValidateFn = Callable[[nn.Module], dict[str, float]]


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings shared by all training nodes (``conf/base/parameters_*.yml``)."""

    epochs: int
    learning_rate: float
    weight_decay: float = 0.0
    device: str = "auto"
    seed: int = 0
    grad_clip_norm: float | None = None
    early_stopping_patience: int | None = None
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    warmup_epochs: int = 0
    cosine_schedule: bool = True
    amp: bool = True
    compile: bool = False
    progress: bool = True
    name: str = "model"
    # None: a non-finite loss stops the run at once. A number: steps whose loss or gradient
    # norm is not finite are skipped (no update) and counted; more than this many raise.
    max_nonfinite_steps: int | None = None
    # Data parallelism (training/distributed.py, docs/scaling.md): ``ddp`` trains with
    # ``devices`` processes on each of ``nodes`` machines, joined at ``rdzv_endpoint``
    # (host:port; default 127.0.0.1 with a free port, one machine). ``devices: auto``: every
    # GPU on CUDA, 2 processes on a CPU of 2 cores or more (resolve_devices).
    strategy: str = "single"
    devices: int | str = 1
    nodes: int = 1
    rdzv_endpoint: str | None = None
    backend: str = "auto"
    lr_scaling: str = "none"
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be > 0 or null, got {self.grad_clip_norm}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(
                f"early_stopping_patience must be >= 1 or null, got {self.early_stopping_patience}"
            )
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"monitor_mode must be 'min' or 'max', got '{self.monitor_mode}'")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"warmup_epochs must lie in [0, epochs), got {self.warmup_epochs} with "
                f"epochs={self.epochs}"
            )
        if self.max_nonfinite_steps is not None and self.max_nonfinite_steps < 0:
            raise ValueError(
                f"max_nonfinite_steps must be >= 0 or null, got {self.max_nonfinite_steps}")
        check_strategy(self)


def check_strategy(config: FitConfig) -> None:
    """The data-parallel fields of ``config`` (called by its ``__post_init__``)."""
    choices = {"strategy": ("single", "ddp"), "backend": ("auto", "gloo", "nccl"),
               "lr_scaling": ("none", "linear", "sqrt")}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {getattr(config, name)!r}")
    for name in ("devices", "nodes"):
        value = getattr(config, name)
        if name == "devices" and value == "auto":
            if config.strategy != "ddp":
                raise ValueError("devices: auto needs strategy: ddp")
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            allowed = "an integer >= 1 or 'auto'" if name == "devices" else "an integer >= 1"
            raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if not isinstance(config.sync_batchnorm, bool):
        raise ValueError(f"sync_batchnorm must be true or false, got {config.sync_batchnorm!r}")
    if config.strategy == "single" and (config.devices != 1 or config.nodes > 1):
        raise ValueError(f"devices={config.devices} and nodes={config.nodes} need strategy: ddp")
    if config.nodes > 1 and not config.rdzv_endpoint:
        raise ValueError(f"nodes={config.nodes} needs rdzv_endpoint (host:port that every "
                         "machine reaches, the same on all of them)")
    if config.rdzv_endpoint is not None and not _is_endpoint(config.rdzv_endpoint):
        raise ValueError(f"rdzv_endpoint must be host:port, got {config.rdzv_endpoint!r}")
    gpu = config.strategy == "ddp" and (config.sync_batchnorm or config.backend == "nccl")
    if gpu and resolve_device(config.device).type != "cuda":
        what = "sync_batchnorm: true" if config.sync_batchnorm else "backend: nccl"
        raise ValueError(f"{what} needs CUDA (torch's SyncBatchNorm and nccl run on GPUs only); "
                         f"this fit runs on the CPU (device: {config.device}): use plain "
                         "BatchNorm (per rank) and backend auto or gloo")
    if config.sync_batchnorm and config.strategy != "ddp":
        raise ValueError("sync_batchnorm: true needs strategy: ddp")


def resolve_devices(config: FitConfig) -> FitConfig:
    """``config`` with ``devices: auto`` made a number for this machine: every GPU when the fit
    runs on CUDA; on the CPU 2 processes when there are 2 cores or more, else 1. A world of one
    process trains as ``strategy: single`` (no launch). Other configs are returned as they are.

    Why 2 on the CPU: one process with 2 threads keeps the second core only about a third busy
    on small convolutions (the denoising HVAE: 0.92 s a step on 1 thread, 0.69 s on 2), while 2
    ranks of one thread each use both (0.85-0.90x the step time of one process, docs/scaling.md).
    """
    if config.devices != "auto":
        return config
    if resolve_device(config.device).type == "cuda":
        devices = torch.cuda.device_count()
    else:
        devices = 2 if available_cores() >= 2 else 1
    strategy = "single" if devices * config.nodes == 1 else config.strategy
    return replace(config, devices=devices, strategy=strategy)


def _is_endpoint(value: object) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    host, port = value.rsplit(":", 1)
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


@dataclass
class FitResult:
    """The trained model (best weights when early stopping monitored a metric) and its history
    of per-epoch values, e.g. ``{"train_loss": [...], "val_loss": [...], "lr": [...]}``."""

    model: nn.Module
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0


def learning_rate_factor(epoch: int, *, epochs: int, warmup_epochs: int, cosine: bool) -> float:
    """Multiplier of the base learning rate at ``epoch``: linear warm-up, then cosine decay."""
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    if not cosine:
        return 1.0
    progress = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def to_device(batch: Sequence[torch.Tensor], device: torch.device) -> Batch:
    """Copy a batch to ``device``. On CUDA the batch is staged in pinned host memory so the
    non-blocking copy really is asynchronous (as DataLoader's ``pin_memory=True`` does)."""
    if device.type != "cuda":
        return tuple(t.to(device) for t in batch)
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in batch)


def _backward_finite(model: nn.Module, loss: torch.Tensor, config: FitConfig) -> bool:
    """Back-propagate ``loss`` and clip; ``False`` when the loss or (with skipping on) the
    gradient norm is not finite. Without skipping, a non-finite loss raises at once."""
    if not torch.isfinite(loss):
        if config.max_nonfinite_steps is None:
            raise FloatingPointError(
                f"{config.name}: loss became {loss.item()}; lower learning_rate or set "
                "grad_clip_norm")
        return False
    loss.backward()
    if config.grad_clip_norm is None:
        return True
    norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
    return config.max_nonfinite_steps is None or bool(torch.isfinite(norm))


@dataclass
class _LoopState:
    """Everything the next epoch of :func:`fit` depends on besides weights, optimiser and
    generators: what a checkpoint stores."""

    history: dict[str, list[float]]
    epoch: int = -1  # the last completed epoch
    step: int = 0
    nonfinite: int = 0
    best_value: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stale_epochs: int = 0
    finished: bool = False


def _capture(loop: _LoopState, *, model: nn.Module, optimiser: torch.optim.Optimizer,
             generator: torch.Generator, hooks: FitHooks | None) -> dict[str, Any]:
    """The checkpoint of ``fit`` after ``loop.epoch``: plain tensors, numbers and lists, so it
    loads with ``weights_only=True``."""
    hook_state = hooks.state_dict() if hasattr(hooks, "state_dict") else {}
    return {"loop": {**{k: v for k, v in vars(loop).items() if k != "best_state"}},
            "best_state": loop.best_state, "model": model.state_dict(),
            "optimiser": optimiser.state_dict(), "generator": generator.get_state(),
            "rng": rng_states(), "hooks": hook_state}


def _resume(checkpoint: FitCheckpoint, loop: _LoopState, *, model: nn.Module,
            optimiser: torch.optim.Optimizer, generator: torch.Generator,
            hooks: FitHooks | None, name: str) -> None:
    """Continue from ``checkpoint`` when it holds a matching state (else leave all as is)."""
    state = checkpoint.load()
    if state is None:
        return
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    generator.set_state(state["generator"])
    restore_rng_states(state["rng"])
    if state["hooks"]:
        hooks.load_state_dict(state["hooks"])
    for key, value in state["loop"].items():
        setattr(loop, key, value)
    loop.best_state = state["best_state"]
    logger.info("%s: resumed from %s after epoch %d%s", name, checkpoint.path, loop.epoch + 1,
                " (training had finished)" if loop.finished else "")


def _train_epoch(loop: _LoopState, epoch: int, *, model: nn.Module, step_model: nn.Module,
                 optimiser: torch.optim.Optimizer, generator: torch.Generator,
                 loss_fn: LossFn, batches: BatchesFn, config: FitConfig,
                 hooks: FitHooks | None, device: torch.device
                 ) -> tuple[dict[str, float], int, int]:
    """One epoch of optimiser steps -> (sums of the loss parts, how many steps gave each part,
    skipped steps); ``loop.step`` and ``loop.nonfinite`` count on over the whole fit."""
    use_autocast = config.amp and device.type == "cuda"
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    skipped = 0
    progress = tqdm(
        batches(epoch, generator), desc=f"{config.name} epoch {epoch + 1}/{config.epochs}",
        leave=False, disable=not config.progress, unit="batch",
    )
    for batch in progress:
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
            output = loss_fn(step_model, batch, generator)
        loss, parts = (output.total, output.parts) if isinstance(output, LossOutput) else (
            output, {})
        loop.step += 1
        optimiser.zero_grad(set_to_none=True)
        if not _backward_finite(model, loss, config):
            # a NaN/inf spike: skip the update, count it, give up if it persists
            optimiser.zero_grad(set_to_none=True)
            skipped, loop.nonfinite = skipped + 1, loop.nonfinite + 1
            logger.warning("%s: non-finite loss or gradient at epoch %d step %d, skipped "
                           "(%d so far)", config.name, epoch + 1, loop.step, loop.nonfinite)
            if loop.nonfinite > config.max_nonfinite_steps:
                raise FloatingPointError(
                    f"{config.name}: {loop.nonfinite} steps with a non-finite loss or gradient "
                    f"(more than max_nonfinite_steps={config.max_nonfinite_steps}); lower "
                    "learning_rate or check the inputs for NaN/inf")
            continue
        optimiser.step()
        if hooks is not None:
            hooks.on_step_end(model, loop.step - 1)
        for key, value in {"train_loss": loss, **parts}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
            counts[key] = counts.get(key, 0) + 1
        progress.set_postfix(loss=f"{sums['train_loss'] / counts['train_loss']:.4f}")
    return sums, counts, skipped


def _epochs(loop: _LoopState, *, model: nn.Module, step_model: nn.Module,
            optimiser: torch.optim.Optimizer, generator: torch.Generator, loss_fn: LossFn,
            batches: BatchesFn, config: FitConfig, validate: ValidateFn | None,
            hooks: FitHooks | None, device: torch.device,
            checkpoint: FitCheckpoint | None) -> None:
    """The epochs of :func:`fit` after ``loop.epoch``, updating ``loop`` in place and
    checkpointing when due, and once more when training ends."""
    history = loop.history
    sign = 1.0 if config.monitor_mode == "min" else -1.0
    for epoch in range(loop.epoch + 1, config.epochs):
        lr = config.learning_rate * learning_rate_factor(
            epoch, epochs=config.epochs, warmup_epochs=config.warmup_epochs,
            cosine=config.cosine_schedule,
        )
        for group in optimiser.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        model.train()
        sums, counts, skipped = _train_epoch(
            loop, epoch, model=model, step_model=step_model, optimiser=optimiser,
            generator=generator, loss_fn=loss_fn, batches=batches, config=config, hooks=hooks,
            device=device)
        if not counts:
            raise ValueError(f"{config.name}: no finite training step in epoch {epoch + 1}"
                             if skipped else
                             f"{config.name}: the batch iterator yielded no batch in epoch {epoch}")
        for key, value in sums.items():  # a part some steps leave out: over those that give it
            history.setdefault(key, []).append(value / counts[key])
        history["lr"].append(lr)
        if config.max_nonfinite_steps is not None:
            history.setdefault("nonfinite_steps", []).append(float(skipped))
        if hooks is not None:
            for key, value in hooks.on_epoch_end(model, epoch).items():
                history.setdefault(key, []).append(float(value))
        stop = False
        summary = (f"{config.name} epoch {epoch + 1}/{config.epochs} "
                   f"train_loss={history['train_loss'][-1]:.4f}")

        if validate is not None:
            model.eval()
            with torch.no_grad():
                values = validate(model)
            for key, value in values.items():
                history.setdefault(key, []).append(float(value))
            summary += "".join(f" {k}={v:.4f}" for k, v in values.items())
            report_epoch(config.name, epoch, values)  # a sweep's pruner may stop the fit here
            if config.early_stopping_patience is not None:
                if config.monitor not in values:
                    raise KeyError(
                        f"{config.name}: early stopping monitors '{config.monitor}' but "
                        f"validate returned {sorted(values)}"
                    )
                current = sign * float(values[config.monitor])
                if current < loop.best_value:
                    loop.best_value, loop.best_epoch, loop.stale_epochs = current, epoch, 0
                    loop.best_state = copy.deepcopy(model.state_dict())
                else:
                    loop.stale_epochs += 1
                if loop.stale_epochs >= config.early_stopping_patience:
                    logger.info("%s: early stop at epoch %d (best %d)", config.name, epoch + 1,
                                loop.best_epoch + 1)
                    stop = True
        if config.progress:
            logger.info(summary)
        loop.epoch = epoch
        if stop:
            break
        if checkpoint is not None and epoch + 1 < config.epochs and checkpoint.due(epoch):
            checkpoint.save(_capture(loop, model=model, optimiser=optimiser,
                                     generator=generator, hooks=hooks))
    loop.finished = True
    if checkpoint is not None:
        checkpoint.save(_capture(loop, model=model, optimiser=optimiser, generator=generator,
                                 hooks=hooks))


def fit(
    model: nn.Module,
    *,
    loss_fn: LossFn,
    batches: BatchesFn,
    config: FitConfig,
    validate: ValidateFn | None = None,
    parameters: Iterable[nn.Parameter] | None = None,
    hooks: FitHooks | None = None,
) -> FitResult:
    """Train ``model`` in place and return it with its per-epoch history.

    Args:
        model: any module; moved to the resolved device.
        loss_fn: ``(model, batch_on_device, generator) -> scalar loss``. The generator lives on
            the CPU and is the only source of randomness (augmentations, masks).
        batches: ``(epoch, generator) -> iterable of CPU tensor tuples``.
        config: optimisation settings.
        validate: ``model -> {name: value}`` evaluated after each epoch (in eval mode, no grad);
            must contain ``config.monitor`` when early stopping is on.
        parameters: what the optimiser updates (default: all of ``model``'s parameters), or
            torch parameter groups (dicts with ``params`` and per-group settings; a group's
            ``lr_scale`` multiplies the scheduled learning rate, e.g. two players of a GAN).
        hooks: method state stepped after each optimiser step and each epoch.

    ``loss_fn`` may return a :class:`LossOutput`, whose parts are averaged per epoch into the
    history (each over the steps that returned it: a method alternating two players' steps
    returns each player's loss on its own steps). With ``config.max_nonfinite_steps`` set, steps with a non-finite loss or gradient
    are skipped (their count per epoch goes to ``history["nonfinite_steps"]``) and the epoch's
    averages are over the finite steps.

    With ``config.strategy == "ddp"`` the same arguments go to
    :func:`~contrastive_signals.training.distributed.launch_fit`, whose ranks run this loop
    with the loss calling the model through DDP (docs/scaling.md).
    """
    config = resolve_devices(config)
    if config.strategy == "ddp" and current_ranks() is None:
        from contrastive_signals.training.distributed import launch_fit

        checkpoint = open_fit_checkpoint(model, config)
        try:
            with handed_to_ranks(checkpoint):
                return launch_fit(model, loss_fn=loss_fn, batches=batches, config=config,
                                  validate=validate, parameters=parameters, hooks=hooks)
        finally:
            if checkpoint is not None:
                checkpoint.release()
    device = resolve_device(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    checkpoint = open_fit_checkpoint(model, config)
    model.to(device)
    # itself in one process; DDP in a ddp worker
    step_model = data_parallel_model(
        model, every_parameter_used=getattr(hooks, "uses_every_parameter", False))
    step_model = torch.compile(step_model) if config.compile else step_model
    optimiser = torch.optim.AdamW(
        list(parameters) if parameters is not None else model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    loop = _LoopState(history={"train_loss": [], "lr": []})
    try:
        if checkpoint is not None:
            _resume(checkpoint, loop, model=model, optimiser=optimiser, generator=generator,
                    hooks=hooks, name=config.name)
        if not loop.finished:
            _epochs(loop, model=model, step_model=step_model, optimiser=optimiser,
                    generator=generator, loss_fn=loss_fn, batches=batches, config=config,
                    validate=validate, hooks=hooks, device=device, checkpoint=checkpoint)
    finally:
        if checkpoint is not None:
            checkpoint.release()
    history, best_state, best_epoch = loop.history, loop.best_state, loop.best_epoch

    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history["train_loss"]) - 1
    return FitResult(model=model.eval(), history=history, best_epoch=best_epoch)
