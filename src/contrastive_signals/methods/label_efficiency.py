"""The label-efficiency protocol of the sleep stager: for each share of the labelled training
recordings and each seed, the stager trained with its epoch CNN from a pretrained encoder
(``w2v``) and from scratch (``scratch``) on the same seeded subset, then evaluated on the test
recordings."""

from __future__ import annotations

import logging
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from contrastive_signals.data.splits import label_subset
from contrastive_signals.methods.sleep_stager import (
    EncoderFineTuning,
    SleepEvaluationParams,
    SleepStagerParams,
    stage_recordings,
    train_sleep_stager,
)
from contrastive_signals.metrics.label_efficiency import fraction_name
from contrastive_signals.metrics.sleep import staged_recordings_metrics
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.training.checkpoint import ScopeSeat, reserve_fit_calls, seated
from contrastive_signals.training.device import available_cores, resolve_device
from contrastive_signals.training.epoch_observers import is_observed
from contrastive_signals.training.spawned_jobs import MAIN_GUARD_HINT, read_job, write_job

logger = logging.getLogger(__name__)

INITS = ("w2v", "scratch")
SUBSETS = ("per_seed", "fixed")


@dataclass(frozen=True)
class LabelEfficiencyParams:
    fractions: tuple[float, ...] = (0.1, 1.0)   # shares of the labelled training recordings
    epochs: tuple[int, ...] = (20, 5)           # fine-tuning epochs per fraction
    seeds: tuple[int, ...] = (0, 1, 2)          # model seed and recording subset per run
    subset_seed: int = 0
    # per_seed: each seed draws its own recordings; fixed: every seed gets the first seed's
    # (the spread over seeds is then that of training alone, as with wav2vec 2.0's fixed
    # labelled subsets)
    subset: str = "per_seed"
    # runs trained at once, each in its own process: "auto" one per training.num_threads
    # cores on the CPU (1 on CUDA, or when num_threads is null); every run is seeded on its
    # own, so the figures equal one-at-a-time's
    workers: int | str = 1
    fine_tuning: EncoderFineTuning = field(default_factory=EncoderFineTuning)  # w2v runs only
    training: SleepStagerParams = field(default_factory=SleepStagerParams)
    evaluation: SleepEvaluationParams = field(default_factory=SleepEvaluationParams)

    def __post_init__(self) -> None:
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")
        if len(self.epochs) != len(self.fractions) or any(e < 1 for e in self.epochs):
            raise ValueError(f"epochs needs one value >= 1 per fraction, got {self.epochs} for "
                             f"{self.fractions}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds}")
        if self.subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got '{self.subset}'")
        if self.workers != "auto" and (isinstance(self.workers, bool)
                                       or not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers must be an integer >= 1 or 'auto', got {self.workers!r}")


@dataclass(frozen=True)
class PlannedRun:
    """One fine-tuning run of the protocol: which labelled recordings (indices into the
    training recordings), which init, for how many epochs; ``seat``: its checkpoint."""

    fraction: float
    epochs: int
    seed: int
    init: str
    subset: tuple[int, ...]
    seat: ScopeSeat | None = None

    @property
    def name(self) -> str:
        """The fit's name, as the logs and checkpoints show it."""
        return f"sleep_{self.init}_{fraction_name(self.fraction)}_seed{self.seed}"


def plan_runs(n_train: int, params: LabelEfficiencyParams) -> list[PlannedRun]:
    """Every (fraction, seed, init) run, in the protocol's order (both inits of a seed share
    the subset)."""
    runs = []
    for fraction, n_epochs in zip(params.fractions, params.epochs, strict=True):
        for seed in params.seeds:
            drawn = seed if params.subset == "per_seed" else params.seeds[0]
            subset = tuple(label_subset(n_train, fraction=fraction, seed=drawn,
                                        subset_seed=params.subset_seed))
            runs.extend(PlannedRun(fraction, n_epochs, seed, init, subset) for init in INITS)
    return runs


def resolve_workers(params: LabelEfficiencyParams, runs: int) -> int:
    """``params.workers`` as a process count for ``runs`` runs on this machine."""
    if params.workers != "auto":
        return max(1, min(params.workers, runs))
    threads = params.training.num_threads
    if threads is None or resolve_device(params.training.fit.device).type == "cuda":
        return 1
    return max(1, min(runs, available_cores() // threads))


def train_and_score(run: PlannedRun, train: list[dict[str, Any]], val: list[dict[str, Any]],
                    test: list[dict[str, Any]], *, stages: list[str],
                    params: LabelEfficiencyParams, pretrained: nn.Module,
                    path: str) -> dict[str, Any]:
    """One planned run: the stager trained on its subset (checkpointed as ``run.seat`` says),
    scored on the test recordings."""
    subset = [train[i] for i in run.subset]
    training = replace(params.training, fit=replace(params.training.fit, seed=run.seed,
                                                    epochs=run.epochs))
    with seated(run.seat):
        bundle, history = train_sleep_stager(
            subset, val, stages=stages, params=training, name=run.name,
            encoder=pretrained if run.init == "w2v" else None,
            fine_tuning=params.fine_tuning, path=f"{path}.training")
    staged = stage_recordings(from_bundle(bundle), test, window=training.window,
                              params=params.evaluation)
    return {"fraction": run.fraction, "init": run.init, "seed": run.seed,
            "recordings": [r["name"] for r in subset], "metrics": staged_recordings_metrics(staged),
            "epochs_trained": len(history["train_loss"])}


# A worker process's recordings and settings, read once by its initializer from the file the
# caller wrote (so the recordings cross the process boundary once per worker, not once per
# run, and never through the spawn pipe: training/spawned_jobs.py).
_WORKER_INPUTS: dict[str, Any] = {}


def _keep_worker_inputs(job: str) -> None:
    _WORKER_INPUTS.update(read_job(job))


def _train_and_score_in_worker(run: PlannedRun) -> dict[str, Any]:
    return train_and_score(run, **_WORKER_INPUTS)


def label_efficiency_runs(train: list[dict[str, Any]], val: list[dict[str, Any]],
                          test: list[dict[str, Any]], *, stages: list[str],
                          params: LabelEfficiencyParams, pretrained: nn.Module,
                          path: str) -> list[dict[str, Any]]:
    """Every (fraction, seed, init) run, in that order (``path``: where ``params`` sit, for
    errors), ``params.workers`` at a time in spawned processes. A run's figures do not depend
    on the layout: each seeds its own generators and trains on the threads it is given.

    Returns:
        ``[{"fraction", "init", "seed", "recordings": [names], "metrics": {cer, macro_f1,
        epoch_acc, kappa, transitions_abs_err}, "epochs_trained"}]``.
    """
    planned = plan_runs(len(train), params)
    planned = [replace(run, seat=seat)
               for run, seat in zip(planned, reserve_fit_calls(len(planned)), strict=True)]
    inputs = {"train": train, "val": val, "test": test, "stages": stages, "params": params,
              "pretrained": pretrained, "path": path}
    workers = resolve_workers(params, len(planned))
    if workers > 1 and is_observed():
        logger.info("%s.workers: the runs train here, one at a time, because an epoch observer "
                    "(a sweep's pruner) watches them", path)
        workers = 1
    if workers == 1:
        return [_logged(run, train_and_score(run, **inputs)) for run in planned]
    # spawn, never fork: this process has run torch's (and maybe numba's) thread pools
    with tempfile.TemporaryDirectory(prefix="label-efficiency-",
                                     ignore_cleanup_errors=True) as folder:
        job = write_job(folder, inputs)
        try:
            with ProcessPoolExecutor(max_workers=workers,
                                     mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_keep_worker_inputs, initargs=(job,)) as pool:
                results = list(pool.map(_train_and_score_in_worker, planned))  # planned order
        except BrokenProcessPool as error:
            raise RuntimeError(
                f"{path}.workers: a worker process ended abruptly: killed (e.g. out of memory; "
                f"fewer workers need less) or while starting ({MAIN_GUARD_HINT})") from error
    return [_logged(run, result) for run, result in zip(planned, results, strict=True)]


def _logged(run: PlannedRun, result: dict[str, Any]) -> dict[str, Any]:
    logger.info("%s (%d recordings): %s", run.name, len(run.subset),
                " ".join(f"{k}={v:.4g}" for k, v in result["metrics"].items()))
    return result
