"""Run a sweep: an Optuna study over a pipeline's parameters, each trial a Kedro run of that
pipeline in this process, each logged as a child MLflow run of the study's parent run.

- The study lives in Optuna's RDB storage (``storage:``; a sqlite file by default): every
  process running the same command joins the same study and takes the next trial until
  ``n_trials`` trials have started (a lock on the sqlite file's folder keeps two processes
  from taking the last one twice) or ``timeout_minutes`` have passed.
- A trial is ``KedroSession.create(runtime_params=<the trial's values>).run(<pipeline>)``:
  the project's hooks run as in ``kedro run`` (parameter checks, isolation of concurrent runs,
  honest run status); kedro-mlflow opens no run of its own (``hooks/sweep.py``).
- The training loop hands each epoch's validation values to the trial
  (``training/epoch_observers.py``); Optuna's pruner decides, and a pruned trial stops there.
- The objective is a validation figure; test figures are computed only after the search, for
  the best trial and the default configuration on the same seeds (``report:``).
- ``processes: N`` (or ``--processes N``): the command starts N - 1 more processes on this
  machine that join the study (each with cores // N threads), and runs the report's runs N at
  a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import Any

import optuna
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import TrialState

from contrastive_signals.config import ParameterError
from contrastive_signals.hooks.run_status import _directory_lock, prepare_sqlite_store
from contrastive_signals.hooks.sweep import capturing_trial
from contrastive_signals.sweep.checks import nested, sweep_problems
from contrastive_signals.sweep.figures import is_validation_figure
from contrastive_signals.sweep.spec import SweepSpec, parse_sweep
from contrastive_signals.training.epoch_observers import observing_epochs

logger = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"
# trials train from scratch: checkpoints would only cost time and disk
TRIAL_DEFAULTS = {"runtime.checkpoints.enabled": False}
COUNTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# read by torch (the project's TorchThreadsHook), OpenMP and the BLAS libraries at start-up
THREAD_VARIABLES = ("TORCH_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


# ---------------------------------------------------------------------------- the project

@dataclass(frozen=True)
class Project:
    """A Kedro project on disk and one of its environments."""

    path: Path
    env: str | None = None

    def bootstrap(self) -> None:
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.path)

    def config(self, key: str) -> dict[str, Any]:
        from kedro.framework.project import settings

        loader = settings.CONFIG_LOADER_CLASS(conf_source=str(self.path / settings.CONF_SOURCE),
                                              env=self.env, **settings.CONFIG_LOADER_ARGS)
        return dict(loader[key])

    def absolute_sqlite(self, uri: str) -> str:
        """``uri`` with a relative sqlite path made relative to the project."""
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
            path = (self.path / uri.removeprefix(prefix)).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
        return uri

    def tracking(self) -> tuple[str, str]:
        """The MLflow tracking URI and experiment name of ``mlflow.yml``."""
        config = self.config("mlflow")
        uri = os.environ.get("MLFLOW_TRACKING_URI") or str(
            config.get("server", {}).get("mlflow_tracking_uri") or "sqlite:///mlflow.db")
        experiment = (config.get("tracking", {}).get("experiment", {}).get("name")
                      or "contrastive_signals")
        return self.absolute_sqlite(uri), experiment


def load_spec(project: Project, name: str) -> SweepSpec:
    """Sweep ``name`` of the project's sweep file, checked against the project: every problem
    raises one :class:`ParameterError` naming its entries, before any trial."""
    from kedro.framework.project import pipelines

    parameters = project.config("parameters")
    sweeps = parameters.get("sweep") or {}
    if name not in sweeps:
        raise ParameterError(f"sweep.{name}: no such sweep in conf/*/parameters_sweep.yml; "
                             f"defined: {sorted(sweeps)}")
    spec = parse_sweep(name, sweeps[name])
    problems = sweep_problems(spec, parameters, pipelines)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise ParameterError(f"{len(problems)} problem(s) in sweep.{name}; no trial ran:\n"
                             f"{listed}")
    return spec


# ---------------------------------------------------------------------------- one trial

@dataclass
class TrialOutcome:
    """What one run of the target pipeline gave."""

    state: TrialState
    figures: dict[str, float] = field(default_factory=dict)
    histories: dict[str, list[float]] = field(default_factory=dict)
    value: float | None = None
    pruned_at_epoch: int | None = None
    error: str | None = None
    seconds: float = 0.0


class _Pruned(Exception):
    """Raised inside the training loop when the pruner stops the trial."""


def _objective_value(spec: SweepSpec, figures: Mapping[str, float],
                     histories: Mapping[str, list[float]]) -> float | None:
    name, objective = spec.objective.metric, spec.objective
    if name in figures:
        return figures[name]
    values = histories.get(name)
    if not values:
        return None
    if objective.reduce == "last":
        return values[-1]
    return max(values) if objective.direction == "maximize" else min(values)


def run_pipeline(project: Project, spec: SweepSpec, assignments: Mapping[str, Any],
                 trial: optuna.Trial | None = None) -> TrialOutcome:
    """Run ``spec``'s pipeline once with ``assignments`` (dotted path -> value) on top of the
    project's parameters; per-epoch values go to ``trial`` (when given), whose pruner may stop
    the run."""
    from kedro.framework.session import KedroSession

    histories: dict[str, list[float]] = {}
    pruned: list[int] = []

    def observe(name: str, epoch: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            histories.setdefault(f"{name}.{key}", []).append(float(value))
        metric = spec.pruning.metric
        if trial is None or metric is None or not metric.startswith(f"{name}."):
            return
        value = values.get(metric.removeprefix(f"{name}."))
        if value is None:
            return
        trial.report(float(value), epoch)
        if trial.should_prune():
            pruned.append(epoch)
            raise _Pruned(f"trial {trial.number} pruned after epoch {epoch + 1} "
                          f"({metric}={value:.4f})")

    runtime = nested({**TRIAL_DEFAULTS, **spec.fixed, **assignments})
    start = time.perf_counter()
    outcome = TrialOutcome(TrialState.COMPLETE)
    with capturing_trial(spec.pipeline) as capture, observing_epochs(observe):
        try:
            with KedroSession.create(project.path, env=project.env,
                                     runtime_params=runtime) as session:
                session.run(pipeline_names=[spec.pipeline], to_nodes=list(spec.to_nodes) or None)
        except Exception as error:  # noqa: BLE001 - a failed trial is recorded, not fatal
            if pruned:
                outcome.state, outcome.pruned_at_epoch = TrialState.PRUNED, pruned[0]
            else:
                outcome.state, outcome.error = TrialState.FAIL, f"{type(error).__name__}: {error}"
                logger.error("trial failed: %s", outcome.error)
    outcome.seconds = time.perf_counter() - start
    outcome.figures, outcome.histories = dict(capture.figures), histories
    if outcome.state == TrialState.COMPLETE:
        outcome.value = _objective_value(spec, outcome.figures, histories)
        if outcome.value is None or not math.isfinite(outcome.value):
            outcome.state = TrialState.FAIL
            outcome.error = f"the run reported no finite {spec.objective.metric}"
    return outcome


# ---------------------------------------------------------------------------- MLflow

class SweepTracking:
    """The study's parent MLflow run and one child run per trial (only the swept parameters
    as parameters; validation figures as metrics; the state as a tag and run status)."""

    def __init__(self, project: Project, spec: SweepSpec) -> None:
        uri, experiment = project.tracking()
        prepare_sqlite_store(uri, {"name": experiment})
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else \
            self.client.create_experiment(experiment)
        self.spec = spec

    def create_parent(self, storage: str) -> str:
        spec = self.spec
        run = self.client.create_run(self.experiment_id, run_name=f"sweep {spec.name}", tags={
            "sweep.name": spec.name, "sweep.study": spec.study, "sweep.storage": storage,
            "sweep.role": "study"})
        params = {"pipeline": spec.pipeline, "objective": spec.objective.metric,
                  "direction": spec.objective.direction, "n_trials": spec.n_trials,
                  "pruning": f"{spec.pruning.pruner} on {spec.pruning.metric}",
                  **{f"space.{path}": json.dumps({k: v for k, v in vars(space).items()
                                                  if v is not None and v is not False})
                     for path, space in spec.parameters.items()}}
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, str(value)[:6000])
        return run.info.run_id

    def start_trial(self, parent: str, number: int, params: Mapping[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=f"{self.spec.name} trial {number}",
                                     tags={MLFLOW_PARENT_RUN_ID: parent, "sweep.name": self.spec.name,
                                           "sweep.trial": str(number), "sweep.role": "trial",
                                           "host": os.uname().nodename, "pid": str(os.getpid())})
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, json.dumps(value) if isinstance(
                value, (list, tuple)) else value)
        return run.info.run_id

    def end_trial(self, run_id: str, outcome: TrialOutcome) -> None:
        client = self.client
        for name, values in outcome.histories.items():
            if is_validation_figure(name):
                for step, value in enumerate(values):
                    client.log_metric(run_id, name, value, step=step)
        for name, value in outcome.figures.items():
            if is_validation_figure(name) and name not in outcome.histories:
                client.log_metric(run_id, name, value)
        if outcome.value is not None:
            client.log_metric(run_id, "objective", outcome.value)
        client.log_metric(run_id, "trial_seconds", outcome.seconds)
        tags = {"sweep.state": outcome.state.name}
        if outcome.pruned_at_epoch is not None:
            tags["sweep.pruned_at_epoch"] = str(outcome.pruned_at_epoch + 1)
        if outcome.error:
            tags["sweep.error"] = outcome.error[:4000]
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}.get(
            outcome.state, "FAILED")
        client.set_terminated(run_id, status=status)


# ---------------------------------------------------------------------------- processes

def threads_per_process(processes: int) -> int:
    """The cores this process may use shared out between ``processes`` sweep processes."""
    from contrastive_signals.training.device import available_cores  # torch: when used

    return max(1, available_cores() // processes)


def share_cores(processes: int) -> None:
    """With ``processes`` > 1: this process (torch, BLAS and OpenMP pools already loaded) and
    the processes it starts from now on use :func:`threads_per_process` threads each."""
    if processes <= 1:
        return
    import threadpoolctl
    import torch

    threads = threads_per_process(processes)
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    torch.set_num_threads(threads)
    threadpoolctl.threadpool_limits(threads)


def start_helpers(project: Project, name: str, count: int, n_trials: int | None
                  ) -> list[tuple[subprocess.Popen, Path]]:
    """``count`` more processes of this sweep that only take trials (the report stays with
    this process), each in its own process group, each writing to
    ``data/10_sweeps/logs/<name>-<pid>-<i>.log``. Call after :func:`share_cores`: they
    inherit its thread settings."""
    folder = project.path / "data" / "10_sweeps" / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "contrastive_signals.sweep", "run", name,
               "--project", str(project.path), "--take-only", "--processes", "1"]
    command += ["--env", project.env] if project.env else []
    command += ["--n-trials", str(n_trials)] if n_trials is not None else []
    helpers = []
    for index in range(count):
        log = folder / f"{name}-{os.getpid()}-{index + 1}.log"
        with open(log, "w") as output:
            helpers.append((subprocess.Popen(command, cwd=project.path, stdout=output,
                                             stderr=subprocess.STDOUT, start_new_session=True),
                            log))
        logger.info("sweep %s: helper process %d started (log %s)", name,
                    helpers[-1][0].pid, log)
    return helpers


def stop_helpers(helpers: list[tuple[subprocess.Popen, Path]]) -> None:
    """Interrupt the helpers (their running trial is told FAIL, as on Ctrl-C) and wait."""
    for process, _ in helpers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
    for process, _ in helpers:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for_helpers(helpers: list[tuple[subprocess.Popen, Path]]) -> None:
    """Wait until every helper has finished its last trial; a failed helper is logged with the
    end of its log (its trials are in the study either way)."""
    for process, log in helpers:
        if process.wait() != 0:
            tail = log.read_text(errors="replace")[-3000:]
            logger.error("sweep helper %d exited with %d; its log (%s) ends:\n%s",
                         process.pid, process.returncode, log, tail)


def _run_alone(path: str, env: str | None, spec: SweepSpec, assignments: Mapping[str, Any]
               ) -> TrialOutcome:
    """One run of ``spec``'s pipeline in a fresh process (a report run)."""
    project = Project(Path(path), env)
    project.bootstrap()
    return run_pipeline(project, spec, assignments)


def report_runner(project: Project, spec: SweepSpec, processes: int):
    """Runs a list of assignments and returns their outcomes in order: here, one after the
    other, or ``processes`` at a time in fresh (spawned) processes."""
    def one_by_one(assignments: list[dict[str, Any]]) -> list[TrialOutcome]:
        return [run_pipeline(project, spec, values) for values in assignments]

    def in_parallel(assignments: list[dict[str, Any]]) -> list[TrialOutcome]:
        # spawn, never fork: this process has run torch's and numba's thread pools
        with ProcessPoolExecutor(max_workers=min(processes, len(assignments)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_run_alone, repeat(str(project.path)), repeat(project.env),
                                 repeat(spec), assignments))

    return one_by_one if processes <= 1 else in_parallel


# ---------------------------------------------------------------------------- the study

def storage_url(project: Project, spec: SweepSpec) -> str:
    return project.absolute_sqlite(spec.storage)


@contextlib.contextmanager
def study_lock(url: str) -> Iterator[None]:
    """Exclusive between processes on one machine for a sqlite storage (its folder's lock);
    nothing for database servers (their transactions keep the study consistent; the trial
    count may then exceed ``n_trials`` by the number of processes racing for the last one)."""
    if url.startswith("sqlite:///"):
        with _directory_lock(Path(url.removeprefix("sqlite:///")).parent):
            yield
    else:
        yield


def _storage(url: str):
    if url.startswith("sqlite:///"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return url


def _encode(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    encoded = {}
    for path, value in params.items():
        space = spec.parameters[path]
        encoded[path] = (json.dumps(value) if space.choices is not None
                         and not isinstance(value, (bool, int, float, str)) else value)
    return encoded


def open_study(project: Project, spec: SweepSpec, tracking: SweepTracking
               ) -> tuple[optuna.Study, str]:
    """Create the study (and its parent MLflow run), or join it; returns it and the parent
    run's id. The first process samples with ``sampler_seed``; a process that joins adds its
    process id, so that two workers do not propose the same values."""
    url = storage_url(project, spec)
    storage = _storage(url)
    with study_lock(url):
        try:
            optuna.load_study(study_name=spec.study, storage=storage)
            joined = True
        except KeyError:
            joined = False
        sampler = optuna.samplers.TPESampler(
            seed=spec.sampler_seed + (os.getpid() if joined else 0),
            n_startup_trials=spec.startup_trials, constant_liar=True)
        study = optuna.create_study(study_name=spec.study, storage=storage, sampler=sampler,
                                    pruner=spec.pruning.build(), load_if_exists=True,
                                    direction=spec.objective.direction)
        if not joined:
            study.set_user_attr(PARENT_RUN_ATTR, tracking.create_parent(url))
            study.set_user_attr("sweep", spec.name)
            for params in spec.enqueue:
                study.enqueue_trial(_encode(spec, params))
    return study, study.user_attrs[PARENT_RUN_ATTR]


def _take_trial(study: optuna.Study, spec: SweepSpec, url: str) -> optuna.Trial | None:
    """The next trial, or ``None`` once ``n_trials`` have been started (by any process)."""
    distributions = {path: space.distribution() for path, space in spec.parameters.items()}
    with study_lock(url):
        started = len(study.get_trials(deepcopy=False, states=COUNTED))
        if started >= spec.n_trials:
            return None
        return study.ask(distributions)


def trial_params(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's values of a trial as parameter values (choices decoded)."""
    return {path: spec.parameters[path].decode(value) for path, value in params.items()}


@dataclass
class SweepSummary:
    study: str
    trials: int
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    best_params: dict[str, Any]
    report: dict[str, Any] | None = None
    ran_here: int = 0


def summarise(study: optuna.Study, spec: SweepSpec, ran_here: int = 0) -> SweepSummary:
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = (max if spec.objective.direction == "maximize" else min)(
        complete, key=lambda t: t.value) if complete else None
    return SweepSummary(
        study=spec.study, trials=sum(s in COUNTED for s in states),
        complete=states.count(TrialState.COMPLETE), pruned=states.count(TrialState.PRUNED),
        failed=states.count(TrialState.FAIL), best_value=best.value if best else None,
        best_params=trial_params(spec, best.params) if best else {}, ran_here=ran_here)


def take_trials(project: Project, spec: SweepSpec, study: optuna.Study, parent: str,
                tracking: SweepTracking) -> int:
    """Take and run trials until the study has ``n_trials`` (counted over every process) or
    this process's ``timeout_minutes`` have passed; returns how many ran here."""
    url = storage_url(project, spec)
    deadline = (time.monotonic() + 60 * spec.timeout_minutes
                if spec.timeout_minutes is not None else math.inf)
    ran = 0
    while time.monotonic() < deadline:
        trial = _take_trial(study, spec, url)
        if trial is None:
            break
        params = trial_params(spec, trial.params)
        logger.info("sweep %s: trial %d with %s", spec.name, trial.number, params)
        child = tracking.start_trial(parent, trial.number, params)
        try:
            outcome = run_pipeline(project, spec, params, trial)
        except BaseException:  # Ctrl-C, SIGTERM: the trial and its run do not stay RUNNING
            study.tell(trial, state=TrialState.FAIL)
            tracking.client.set_tag(child, "sweep.state", "INTERRUPTED")
            tracking.client.set_terminated(child, status="KILLED")
            raise
        trial.set_user_attr("mlflow_run_id", child)
        trial.set_user_attr("seconds", outcome.seconds)
        if outcome.state == TrialState.COMPLETE:
            study.tell(trial, outcome.value)
        else:
            study.tell(trial, state=outcome.state)
        tracking.end_trial(child, outcome)
        ran += 1
        logger.info("sweep %s: trial %d %s%s in %.1f s", spec.name, trial.number,
                    outcome.state.name, f" {spec.objective.metric}={outcome.value:.4f}"
                    if outcome.value is not None else "", outcome.seconds)
    return ran


def run_sweep(project: Project, name: str, *, report: bool = True,
              n_trials: int | None = None, processes: int | None = None,
              take_only: bool = False) -> SweepSummary:
    """Take trials of sweep ``name`` until the study has its trials (or time is up), then,
    when no trial of any process is still running, finish the parent run: best trial, Optuna
    plots and (``report``) the test figures of the best and the default configuration.

    ``processes`` (default: the sweep's ``processes``) > 1 starts that many - 1 helper
    processes that join the study, and runs the report that many runs at a time.
    ``take_only``: only take trials (a helper); the parent run is left to its starter."""
    project.bootstrap()
    spec = load_spec(project, name)
    spec = replace(spec, **({"n_trials": n_trials} if n_trials is not None else {}),
                   **({"processes": processes} if processes is not None else {}))
    tracking = SweepTracking(project, spec)
    study, parent = open_study(project, spec, tracking)
    share_cores(spec.processes)
    helpers = (start_helpers(project, name, spec.processes - 1, n_trials)
               if spec.processes > 1 else [])
    try:
        ran = take_trials(project, spec, study, parent, tracking)
        wait_for_helpers(helpers)
    except BaseException:
        stop_helpers(helpers)
        raise
    summary = summarise(study, spec, ran)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running and not take_only:
        from contrastive_signals.sweep.reporting import finish_parent

        summary.report = finish_parent(project, spec, study, tracking, parent, summary,
                                       report=report,
                                       run_all=report_runner(project, spec, spec.processes))
    return summary


def rerun_best(project: Project, name: str) -> dict[str, Any]:
    """Run the best trial's configuration alone (no study, no pruning) and return its
    objective beside the one the study recorded."""
    project.bootstrap()
    spec = load_spec(project, name)
    study = optuna.load_study(study_name=spec.study, storage=_storage(storage_url(project, spec)))
    best = study.best_trial
    params = trial_params(spec, best.params)
    outcome = run_pipeline(project, spec, params)
    return {"sweep": name, "trial": best.number, "params": params, "study_value": best.value,
            "rerun_value": outcome.value, "state": outcome.state.name}


def report_again(project: Project, name: str, processes: int | None = None
                 ) -> dict[str, Any] | None:
    """(Re)run the final report of sweep ``name``'s study as it stands (after a search that
    was stopped before its report, say) and log it to the parent run."""
    from contrastive_signals.sweep.reporting import write_report

    project.bootstrap()
    spec = load_spec(project, name)
    if spec.report is None:
        return None
    processes = spec.processes if processes is None else processes
    share_cores(processes)
    study = optuna.load_study(study_name=spec.study, storage=_storage(storage_url(project, spec)))
    tracking = SweepTracking(project, spec)
    parent = study.user_attrs[PARENT_RUN_ATTR]
    result = write_report(project, spec, tracking.client, parent,
                          summarise(study, spec).best_params,
                          report_runner(project, spec, processes))
    tracking.client.set_terminated(parent, status="FINISHED")
    return result
