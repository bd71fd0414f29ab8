"""Runs started at once in a project without a store yet create one sqlite store and one
experiment between them (before: ``duplicate column name: step``, ``table
_alembic_tmp_metrics already exists`` in two of three processes)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

SCRIPT = ("import sys; from contrastive_signals.hooks.run_status import prepare_sqlite_store; "
          "prepare_sqlite_store(sys.argv[1], {'name': 'contrastive_signals'})")


def test_concurrent_runs_create_the_store_and_the_experiment_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}"
    processes = [subprocess.Popen([sys.executable, "-c", SCRIPT, uri], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [(process.communicate(timeout=300)[0], process.returncode) for process in processes]
    assert [code for _, code in outputs] == [0, 0, 0], outputs
    experiments = MlflowClient(tracking_uri=uri).search_experiments()
    assert sorted(e.name for e in experiments) == ["Default", "contrastive_signals"]
