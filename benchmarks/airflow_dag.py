"""`airflow dags test` of the `conf/test` default pipeline's DAG (docs/airflow.md) beside a
plain `kedro run --env=test` of the same pipeline, one after the other in one process, each
in a fresh project copy, with the load average around each. Writes a flat JSON object::

    kedro_run.wall_s, airflow.create_s, airflow.migrate_s, airflow.dags_test_s,
    airflow.dags_test_over_kedro_run, airflow.report_equal, loadavg.*, machine.*

    python benchmarks/airflow_dag.py --out benchmarks/results/airflow_dag.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench_common import machine_info, time_pipeline_run, write_figures

REPORT = "data/08_reporting/evaluation_metrics.json"


def main() -> None:
    from tests.e2e.airflow_dag import dag_test_in_copy

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    plain = time_pipeline_run("__default__", REPORT, "test")
    before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        dag = dag_test_in_copy(Path(folder))
        report = json.loads((dag["project"] / REPORT).read_text())
    after = os.getloadavg()
    same = {k: v for k, v in report.items() if not k.endswith("seconds")} == {
        k: v for k, v in plain.metrics.items() if not k.endswith("seconds")}
    write_figures({
        "kedro_run.wall_s": plain.wall_s,
        **{f"kedro_run.{k}": v for k, v in plain.load_figures().items()},
        "airflow.create_s": round(dag["create_s"], 1),
        "airflow.migrate_s": round(dag["migrate_s"], 1),
        "airflow.dags_test_s": round(dag["dags_test_s"], 1),
        "airflow.dags_test_over_kedro_run": round(dag["dags_test_s"] / plain.wall_s, 2),
        "airflow.report_equal": same,
        "airflow.loadavg_1m_before": round(before[0], 2),
        "airflow.loadavg_1m_after": round(after[0], 2),
        **machine_info("apache-airflow", "kedro-airflow"),
    }, args.out)


if __name__ == "__main__":
    main()
