"""What the tasks of the generated Airflow DAG run (``make airflow-dag``, docs/airflow.md).

Each Airflow task is its own process running one Kedro session on a slice of the pipeline
(one top-level namespace, or one node without a namespace). Three things make the tasks of
one DAG run behave like one ``kedro run``:

- **Working directory.** Every task runs inside the project folder (baked into the DAG when it
  is generated, or ``CONTRASTIVE_SIGNALS_PROJECT_PATH``), so relative paths (``data/``,
  ``sqlite:///mlflow.db``) mean what they mean for ``kedro run``, whatever folder the worker
  starts in.
- **Versioned datasets.** A task returns (Airflow XCom) the save version of each versioned
  dataset it wrote; a downstream task loads exactly those versions (Kedro's
  ``load_versions``), never "the newest on disk", which another DAG run or ``kedro run`` may
  have written meanwhile. Unversioned files go through ``data/`` as in ``kedro run``.
- **One MLflow picture.** ``start_dag_run`` (the first task) opens one parent run per DAG
  run, named after the pipeline and tagged with the DAG and run ids. Every Kedro task's
  session is a nested child run (hooks/orchestration.py), named after the task and tagged
  with the DAG run, task id, try number and its load/save versions. ``finish_dag_run`` (the
  last task, run whatever the others did) copies into the parent the metrics (whole
  histories) and parameters of each task's last try, under the names a plain ``kedro run``
  logs, so that the parent compares with a ``kedro run`` run side by side; it ends the parent
  FINISHED when every task's last try finished, FAILED otherwise (and then fails itself, so
  the DAG run fails too). Artifacts (models, plots, reports) stay in the children.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from contrastive_signals.hooks.orchestration import (
    PARENT_RUN_ENV,
    PARENT_TAG,
    RUN_NAME_ENV,
    RUN_TAGS_ENV,
    SAVED_VERSIONS_ENV,
)
from contrastive_signals.hooks.run_status import end_active_runs

logger = logging.getLogger(__name__)

PROJECT_PATH_ENV = "CONTRASTIVE_SIGNALS_PROJECT_PATH"
ROLE_TAG, DAG_TAG, DAG_RUN_TAG, TASK_TAG, TRY_TAG = (
    "airflow.role", "airflow.dag_id", "airflow.run_id", "airflow.task_id", "airflow.try_number")
SAVE_VERSION_TAG, LOAD_VERSIONS_TAG = "kedro.save_version", "kedro.load_versions"
# MLflow's limits on one log_batch call
MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH = 1000, 100
MAX_TAG_LENGTH = 8000


def resolve_project(baked: str | os.PathLike | None) -> Path:
    """The project folder: ``CONTRASTIVE_SIGNALS_PROJECT_PATH`` when set, else ``baked`` (the
    folder the DAG was generated from). Fails with the reason when it is not a Kedro
    project."""
    chosen = os.environ.get(PROJECT_PATH_ENV) or (str(baked) if baked else "")
    if not chosen:
        raise RuntimeError(f"no project folder: set {PROJECT_PATH_ENV} or regenerate the DAG "
                           "with `make airflow-dag`")
    project = Path(chosen).expanduser().resolve()
    if not (project / "pyproject.toml").is_file():
        raise RuntimeError(f"{project} is not the Kedro project (no pyproject.toml); set "
                           f"{PROJECT_PATH_ENV} to the project folder")
    return project


@contextlib.contextmanager
def in_project(project: Path, environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Inside ``project`` as working directory with ``environ`` set; both restored after (the
    tasks of ``airflow dags test`` share one process)."""
    previous_dir = Path.cwd()
    previous_env = {name: os.environ.get(name) for name in environ or {}}
    os.chdir(project)
    os.environ.update(environ or {})
    try:
        yield
    finally:
        os.chdir(previous_dir)
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def no_run_left_active() -> Iterator[None]:
    """End every MLflow run left on this process's run stack, FINISHED after success, FAILED
    after an error. kedro-mlflow ends its run, but reopens it per node (for threaded runners)
    and leaves those entries to mlflow's exit handler: fine for one ``kedro run`` per process,
    but the tasks of ``airflow dags test`` share one process, and the next session would log
    into the stale run."""
    import mlflow

    try:
        yield
    except BaseException:
        end_active_runs("FAILED")
        raise
    while mlflow.active_run() is not None:
        mlflow.end_run("FINISHED")


def _session(project: Path, env: str):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    return KedroSession.create(project_path=project, env=env, conf_source=str(project / "conf"))


def _tracking(context) -> tuple[Any, str]:
    """The MLflow client and experiment id of the project's ``mlflow.yml`` (set up by
    kedro-mlflow when the context was created)."""
    from mlflow.tracking import MlflowClient

    config = context.mlflow
    client = MlflowClient(tracking_uri=config.server.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(config.tracking.experiment.name)
    return client, experiment.experiment_id


def start_dag_run(project: Path, env: str, pipeline_name: str, *, dag_id: str, run_id: str,
                  task_ids: Iterable[str]) -> str:
    """Open (or, on a retry, find) the parent MLflow run of DAG run ``run_id``; returns its
    id. It is left RUNNING for ``finish_dag_run`` to end; it carries no host/pid tags, so
    hooks/run_status.py never takes it for a run orphaned by a dead process."""
    with in_project(project), _session(project, env) as session:
        client, experiment_id = _tracking(session.load_context())
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'parent' and "
            f"tags.`{DAG_TAG}` = '{dag_id}' and tags.`{DAG_RUN_TAG}` = '{run_id}'")
        if found:
            return found[0].info.run_id
        run = client.create_run(experiment_id, run_name=pipeline_name, tags={
            ROLE_TAG: "parent", DAG_TAG: dag_id, DAG_RUN_TAG: run_id,
            "kedro.pipeline": pipeline_name, "kedro.env": env,
            "airflow.tasks": ",".join(task_ids)})
        return run.info.run_id


def merge_load_versions(upstream: Iterable[Mapping[str, str] | None],
                        inputs: Iterable[str]) -> dict[str, str]:
    """The load versions of this task: the versions its upstream tasks saved (their XComs,
    ``{dataset: version}``) of the datasets this task reads. Two upstream tasks never save
    one dataset (Kedro outputs have one producer)."""
    wanted = set(inputs)
    versions: dict[str, str] = {}
    for saved in upstream:
        versions.update({name: v for name, v in (saved or {}).items() if name in wanted})
    return versions


def _truncated(text: str) -> str:
    return text if len(text) <= MAX_TAG_LENGTH else text[:MAX_TAG_LENGTH - 3] + "..."


def run_kedro_task(project: Path, env: str, pipeline_name: str, *, task_id: str,
                   namespaces: list[str] | None = None, node_names: list[str] | None = None,
                   parent_run_id: str | None, upstream: Iterable[Mapping[str, str] | None],
                   dag_id: str, run_id: str, try_number: int) -> dict[str, str]:
    """Run the nodes of one task (``namespaces`` or ``node_names`` of ``pipeline_name``) in
    one Kedro session, loading the versions ``upstream`` saved; returns ``{dataset:
    version}`` of the versioned datasets it saved (the task's XCom)."""
    from kedro.framework.project import pipelines

    if (namespaces is None) == (node_names is None):
        raise ValueError("give exactly one of namespaces and node_names")
    upstream = list(upstream)
    with in_project(project), _session(project, env) as session, \
            tempfile.TemporaryDirectory(prefix="kedro-task-") as scratch:
        save_version = session.store["session_id"]
        session.load_context()  # the registry follows the run's parameters (UCR sets)
        sliced = pipelines[pipeline_name].filter(node_names=node_names,
                                                 node_namespaces=namespaces)
        load_versions = merge_load_versions(upstream, sliced.inputs())
        saved_file = Path(scratch) / "saved_versions.json"
        environ = {
            SAVED_VERSIONS_ENV: str(saved_file),
            RUN_NAME_ENV: task_id,
            RUN_TAGS_ENV: json.dumps({
                DAG_TAG: dag_id, DAG_RUN_TAG: run_id, TASK_TAG: task_id,
                TRY_TAG: str(try_number), ROLE_TAG: "task", SAVE_VERSION_TAG: save_version,
                LOAD_VERSIONS_TAG: _truncated(json.dumps(load_versions, sort_keys=True))}),
        }
        if parent_run_id:
            environ[PARENT_RUN_ENV] = parent_run_id
        with in_project(project, environ), no_run_left_active():
            session.run(pipeline_names=[pipeline_name], node_names=node_names,
                        namespaces=namespaces, load_versions=load_versions or None)
        return json.loads(saved_file.read_text())


def _try_order(run: Any) -> tuple[int, int]:
    return int(run.data.tags.get(TRY_TAG) or 0), run.info.start_time or 0


def latest_tries(runs: Iterable[Any]) -> dict[str, Any]:
    """Task id -> the child run of its last try (highest try number, then latest start)."""
    latest: dict[str, Any] = {}
    for run in runs:
        task = run.data.tags.get(TASK_TAG)
        if task is not None and (task not in latest or _try_order(run) > _try_order(latest[task])):
            latest[task] = run
    return latest


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def copy_into_parent(client, parent_run_id: str, children: Iterable[Any]) -> tuple[int, int]:
    """Log every metric (whole history: steps and timestamps) and parameter of ``children``
    into the parent run under the same names; returns (metric values, params) copied. A
    parameter two children logged is logged once (Kedro gives both the same value)."""
    from mlflow.entities import Param

    metrics, params = [], {}
    for child in children:
        for key in sorted(child.data.metrics):
            metrics.extend(client.get_metric_history(child.info.run_id, key))
        params.update(child.data.params)
    existing = client.get_run(parent_run_id).data.params
    new_params = [Param(k, v) for k, v in sorted(params.items()) if k not in existing]
    for batch in _chunks(metrics, MAX_METRICS_PER_BATCH):
        client.log_batch(parent_run_id, metrics=batch)
    for batch in _chunks(new_params, MAX_PARAMS_PER_BATCH):
        client.log_batch(parent_run_id, params=batch)
    return len(metrics), len(new_params)


def close_parent_run(client, experiment_id: str, parent_run_id: str,
                     task_ids: Iterable[str]) -> dict[str, str]:
    """Copy the last try of each task's child run into the parent and end the parent: FINISHED
    when every task's last try finished, else FAILED (tag ``airflow.tasks_failed``). Returns
    ``{task id: status of its last try, or MISSING}``."""
    task_ids = list(task_ids)
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
    latest = latest_tries(children)
    statuses = {task: (latest[task].info.status if task in latest else "MISSING")
                for task in task_ids}
    finished = [latest[t] for t in task_ids if statuses[t] == "FINISHED"]
    values, params = copy_into_parent(client, parent_run_id, finished)
    failed = sorted(t for t, status in statuses.items() if status != "FINISHED")
    client.set_tag(parent_run_id, "airflow.tasks_failed", ",".join(failed) or "-")
    client.set_terminated(parent_run_id, status="FAILED" if failed else "FINISHED")
    logger.info("parent run %s: %d metric values and %d params from %d task runs",
                parent_run_id, values, params, len(finished))
    return statuses


def finish_dag_run(project: Path, env: str, *, parent_run_id: str,
                   task_ids: Iterable[str]) -> dict[str, str]:
    """Aggregate the children of ``parent_run_id`` into it and end it
    (:func:`close_parent_run`); returns ``{task id: status of its last try}``. Raises when a
    task has no FINISHED last try (the parent is then ended FAILED), so that the DAG run
    fails."""
    with in_project(project), _session(project, env) as session:
        client, experiment_id = _tracking(session.load_context())
        statuses = close_parent_run(client, experiment_id, parent_run_id, task_ids)
    failed = sorted(t for t, status in statuses.items() if status != "FINISHED")
    if failed:
        raise RuntimeError(f"tasks without a finished run: {', '.join(failed)} "
                           f"({', '.join(statuses[t] for t in failed)}); the MLflow parent run "
                           f"{parent_run_id} is marked FAILED")
    return statuses
