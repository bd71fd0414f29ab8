"""Honest MLflow run status: a run that did not finish never says FINISHED.

- Ctrl-C (SIGINT) and SIGTERM end the active MLflow run as KILLED, tagged with the node that
  was running (``interrupted_node``) and the signal, then stop the process as usual (mlflow's
  own exit handler would otherwise mark an interrupted run FINISHED, and SIGTERM would leave
  it RUNNING).
- A hard kill (SIGKILL, power loss) cannot be caught: each run tags itself with its host and
  process id, and the next run in the project closes, as KILLED, every RUNNING run of this
  host whose process is gone.
- An unreachable tracking server fails the command within seconds with one line naming the
  URI and the way back to the local store, instead of minutes of HTTP retries.
- A new sqlite store is created by one run at a time: mlflow creates the tables and runs its
  alembic migrations (seconds) on first use, and two runs doing it at once failed
  (``duplicate column name: step``, ``table _alembic_tmp_metrics already exists``). Once the
  store exists, mlflow's own ``busy_timeout`` (20 s) lets concurrent runs write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

HOST_TAG, PID_TAG = "host", "pid"
PROBE_TIMEOUT_S = 5.0


def tracking_server_problem(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the tracking server at ``uri`` cannot be used (``None`` when it answers, or when
    ``uri`` is not an HTTP server: a sqlite or file store)."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answers (a proxy or an older server without /health)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return (f"MLflow tracking server {uri} is unreachable ({reason}). Start it "
                "(`make mlflow-ui`), or log to the project's local store: unset "
                "MLFLOW_TRACKING_URI (or set it to sqlite:///mlflow.db)")


def end_active_runs(status: str, **tags: str) -> None:
    """End the active MLflow run with ``status`` (tagging it with ``tags`` first). kedro-mlflow's
    run can sit on mlflow's run stack more than once: every entry is ended, or mlflow's exit
    handler would end the last one as FINISHED."""
    if tags and mlflow.active_run() is not None:
        mlflow.set_tags(tags)
    while mlflow.active_run() is not None:
        mlflow.end_run(status)


@contextlib.contextmanager
def _directory_lock(folder: Path):
    """An exclusive advisory lock on ``folder`` (no lock file to leave behind); no lock where
    ``fcntl`` does not exist."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def prepare_sqlite_store(uri: str, experiment: dict[str, Any] | None = None) -> None:
    """Open (creating it when new) the sqlite tracking store at ``uri``, and create the
    ``experiment`` of ``mlflow.yml`` (``tracking.experiment``) when it is missing and has no
    artifact location of its own, while holding a lock on the store's folder: concurrent runs
    never create the tables or the experiment at the same time (kedro-mlflow then finds the
    experiment). Nothing for other stores."""
    if not uri.startswith("sqlite:///"):
        return
    folder = Path(uri.removeprefix("sqlite:///")).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    experiment = experiment or {}
    name = experiment.get("name")
    kwargs = experiment.get("create_experiment_kwargs") or {}
    with _directory_lock(folder):
        client = MlflowClient(tracking_uri=uri)  # its first query creates the tables
        if name and kwargs.get("artifact_location") is None \
                and client.get_experiment_by_name(name) is None:
            client.create_experiment(name, tags=kwargs.get("tags"))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_orphaned_runs(client: MlflowClient, experiment_id: str, *, host: str,
                        current_run_id: str | None) -> list[str]:
    """End as KILLED every RUNNING run of ``experiment_id`` started on ``host`` by a process
    that no longer exists; returns their ids. Runs of other hosts and of live processes are
    left alone."""
    closed = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if run.info.run_id == current_run_id or tags.get(HOST_TAG) != host:
            continue
        pid = tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        client.set_tag(run.info.run_id, "closed_by", "a later run: its process was gone")
        client.set_terminated(run.info.run_id, status="KILLED")
        closed.append(run.info.run_id)
    return closed


def _mlflow_config(context) -> dict[str, Any]:
    try:
        return dict(context.config_loader["mlflow"])
    except Exception:  # no mlflow.yml: kedro-mlflow's defaults
        return {}


class RunStatusHook:
    """Tags, signal handlers and leftover-run cleanup around kedro-mlflow's run."""

    def __init__(self) -> None:
        self._node: str | None = None
        self._previous: dict[int, Any] = {}

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        """Before kedro-mlflow contacts the tracking server: fail fast when it is down."""
        uri = os.environ.get("MLFLOW_TRACKING_URI") or str(
            context.config_loader["mlflow"]["server"].get("mlflow_tracking_uri") or "")
        problem = tracking_server_problem(uri)
        if problem is not None:
            raise SystemExit(f"ERROR: {problem}")
        prepare_sqlite_store(uri, _mlflow_config(context).get("tracking", {}).get("experiment"))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        run = mlflow.active_run()
        if run is None:
            return
        host = socket.gethostname()
        mlflow.set_tags({HOST_TAG: host, PID_TAG: str(os.getpid())})
        closed = close_orphaned_runs(MlflowClient(), run.info.experiment_id, host=host,
                                     current_run_id=run.info.run_id)
        if closed:
            logger.warning("closed %d MLflow run(s) left RUNNING by killed processes as "
                           "KILLED: %s", len(closed), ", ".join(closed))
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        end_active_runs("KILLED", interrupted_by=name, interrupted_node=self._node or "-")
        logger.error("%s received%s; the MLflow run is marked KILLED", name,
                     f" while node {self._node} ran" if self._node else "")
        self._restore_handlers()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @hook_impl
    def before_node_run(self, node) -> None:
        self._node = node.name

    @hook_impl
    def after_node_run(self, node) -> None:
        self._node = None

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore_handlers()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._restore_handlers()
