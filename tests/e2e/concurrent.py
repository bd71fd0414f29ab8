"""Two different `kedro run`s at once in one project (issue 14): the longer run saves its
model after the shorter one, the situation in which an unpinned evaluation loaded the other
run's newer model. Shared by tests/e2e/test_concurrent_runs.py (one repetition) and
benchmarks/concurrent_runs.py (five)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import mlflow

from tests.e2e.project import kedro, make_project_copy, start_kedro

NODE = "evaluation.simclr.evaluate"
COMMAND = ["run", "--env=test", f"--to-nodes={NODE}", "--params"]
# A trains longer than B and starts first, so B saves its (newer-versioned) model first.
RUNS = {"A": "pretraining.simclr.fit.epochs=6", "B": "pretraining.simclr.fit.seed=1"}
_FIGURES = re.compile(rf"{re.escape(NODE)}: (.+)$", re.MULTILINE)


def _figures(log: str) -> str:
    """The one-line figures the evaluation node logged (NodeFiguresHook)."""
    found = _FIGURES.findall(re.sub(r"\s+\S+\.py:\d+\n\s*", " ", log))
    if not found:
        raise AssertionError(f"no figures of {NODE} in the log:\n{log[-3000:]}")
    return " ".join(found[-1].split())


def _mlflow_figures(project: Path) -> dict[str, dict[str, float]]:
    """Each run's (by its --params) final metrics in the project's MLflow store."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    by_name = {}
    for run in runs:
        params = run.data.params
        name = ("A" if params.get("pretraining.simclr.fit.epochs") == "6" else
                "B" if params.get("pretraining.simclr.fit.seed") == "1" else None)
        if name is None:
            continue  # the run that built the shared inputs
        assert run.info.status == "FINISHED", run.info
        by_name[name] = dict(run.data.metrics)
    return by_name


def solo_figures(workdir: Path) -> dict[str, tuple[str, dict[str, float]]]:
    """Each run alone in its own project: (evaluation figures, MLflow metrics)."""
    figures = {}
    for name, params in RUNS.items():
        (workdir / f"solo_{name}").mkdir()
        project = make_project_copy(workdir / f"solo_{name}")
        result = kedro(project, *COMMAND, params)
        figures[name] = (_figures(result.stdout + result.stderr), _mlflow_figures(project)[name])
    return figures


def concurrent_figures(workdir: Path, *, stagger_s: float = 3.0
                       ) -> dict[str, tuple[str, dict[str, float]]]:
    """Both runs in one project, B started ``stagger_s`` after A."""
    workdir.mkdir()
    project = make_project_copy(workdir)
    # the shared inputs first, so both runs start training at about the same time
    kedro(project, "run", "--env=test", "--to-nodes=build_image_features")
    processes = {}
    for name, params in RUNS.items():
        processes[name] = start_kedro(project, *COMMAND, params, log=workdir / f"{name}.log")
        time.sleep(stagger_s)
    for name, process in processes.items():
        if process.wait(timeout=600) != 0:
            raise AssertionError((workdir / f"{name}.log").read_text()[-4000:])
    stored = _mlflow_figures(project)
    return {name: (_figures((workdir / f"{name}.log").read_text()), stored[name])
            for name in RUNS}


def wrong_figures(solo: dict, concurrent: dict) -> list[str]:
    """Which figures of the concurrent runs differ from the same runs alone."""
    wrong = []
    for name, (line, metrics) in solo.items():
        if concurrent[name][0] != line:
            wrong.append(f"{name} evaluation: {concurrent[name][0]} (alone: {line})")
        wrong += [f"{name} MLflow {key}: {concurrent[name][1].get(key)} (alone: {value})"
                  for key, value in metrics.items() if concurrent[name][1].get(key) != value]
    return wrong
