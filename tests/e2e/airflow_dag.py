"""Helpers for the Airflow end-to-end test and benchmark: the project's DAG generated into a
throwaway project copy, then `airflow db migrate` and `airflow dags test` on a temporary
SQLite home, from a working directory outside the project."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.project import PROJECT_ROOT, kedro, make_project_copy, project_env

AIRFLOW = Path(sys.executable).with_name("airflow")
TEMPLATE = PROJECT_ROOT / "scripts" / "airflow_dag_template.j2"
DAG_ID = "contrastive_signals_test"  # the default pipeline in the `test` environment


def airflow_env(project: Path, home: Path, dags: Path) -> dict[str, str]:
    """The environment of the airflow commands: a temporary home with SQLite, no examples,
    nothing that reaches out (usage data, OpenTelemetry, Sentry)."""
    env = project_env(project)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__TRACES__OTEL_ON": "False",
        "AIRFLOW__METRICS__OTEL_ON": "False",
        "AIRFLOW__SENTRY__SENTRY_ON": "False",
        "OMP_WAIT_POLICY": "PASSIVE",
    })
    return env


def airflow(cwd: Path, env: dict[str, str], *args: str,
            timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    """Run the `airflow` CLI; its result and wall seconds. Fails with its output if it exits
    non-zero."""
    started = time.perf_counter()
    result = subprocess.run([str(AIRFLOW), *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result, seconds


def dag_test_in_copy(root: Path, prepare: Callable[[Path], None] | None = None,
                     pipeline: str = "__default__") -> dict:
    """In ``root``: a project copy, the DAG of ``pipeline`` (``make airflow-dag``'s command,
    env ``test``, no retries) in ``root/dags``, ``prepare(project)``, then ``airflow db
    migrate`` and ``airflow dags test`` run from ``root/elsewhere``. Returns the paths and the
    seconds of each step."""
    dags, home, elsewhere = root / "dags", root / "home", root / "elsewhere"
    for folder in (root / "project", home, elsewhere):
        folder.mkdir()
    project = make_project_copy(root / "project")
    started = time.perf_counter()
    dag_id = DAG_ID + ("" if pipeline == "__default__" else f"_{pipeline}")
    kedro(project, "airflow", "create", "--env=test", f"--pipelines={pipeline}",
          "--group-by=namespace",
          f"--jinja-file={TEMPLATE}", f"--target-dir={dags}",
          f"--params=project_path={project},retries=0")
    create_s = time.perf_counter() - started
    if prepare is not None:
        prepare(project)
    env = airflow_env(project, home, dags)
    _, migrate_s = airflow(elsewhere, env, "db", "migrate")
    result, test_s = airflow(elsewhere, env, "dags", "test", dag_id)
    return {"project": project, "dag_file": dags / f"{dag_id}_dag.py", "home": home,
            "output": result.stdout + result.stderr, "create_s": create_s,
            "migrate_s": migrate_s, "dags_test_s": test_s}
