"""The notebooks of notebooks/ executed top to bottom with nbclient on the conf/test outputs of
a project copy: the sleep pipeline run twice (two seeds, so there is something to compare) and
the digits pipeline once. Parameters reach the notebooks through environment variables
(CONTRASTIVE_SIGNALS_PROJECT, KEDRO_ENV, MLFLOW_TRACKING_URI), as documented in
docs/notebooks.md; one notebook is run from the copy's notebooks/ folder without them, to show
it finds its project from the working directory."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest
import torch

from tests.e2e.project import PROJECT_ROOT, kedro, make_project_copy, project_env

pytestmark = pytest.mark.slow
NOTEBOOKS = PROJECT_ROOT / "notebooks"
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def notebook_project(tmp_path_factory):
    """A project copy after `kedro run --env=test --pipeline=sleep` with two seeds and the
    digits pipeline up to the SimCLR encoder (what the notebooks read)."""
    project = make_project_copy(tmp_path_factory.mktemp("notebook_project"))
    kedro(project, "run", "--env=test", "--pipeline=sleep")
    kedro(project, "run", "--env=test", "--pipeline=sleep", "--params",
          "sleep.training.fit.seed=1")
    kedro(project, "run", "--env=test", "--pipeline=__default__", "--to-nodes",
          "simclr.train_contrastive_encoder")
    return project


def execute(notebook: str, *, cwd: Path, env: dict[str, str], inject: str = ""):
    """The notebook executed in a fresh kernel started in ``cwd`` with environment ``env``
    (``inject``: a cell put after the `parameters` cell, as papermill does); fails with the
    cell's traceback when a cell raises."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    if inject:
        tagged = next(i for i, cell in enumerate(nb.cells)
                      if "parameters" in cell.metadata.get("tags", []))
        nb.cells.insert(tagged + 1, nbformat.v4.new_code_cell(inject))
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb


def outputs_text(nb) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
            parts.append(output.get("data", {}).get("text/html", ""))
    return "\n".join(parts)


def images(nb) -> int:
    return sum("image/png" in output.get("data", {})
               for cell in nb.cells for output in cell.get("outputs", []))


def notebook_env(project: Path, *, tracking_uri: bool = True, **extra: str) -> dict[str, str]:
    """The kernel's environment: the project's (MLFLOW_TRACKING_URI unless ``tracking_uri``
    is false), none of the notebooks' variables but ``extra``."""
    env = project_env(project)
    for name in ("CONTRASTIVE_SIGNALS_PROJECT", "KEDRO_ENV") + (() if tracking_uri
                                                                 else ("MLFLOW_TRACKING_URI",)):
        env.pop(name, None)
    env.update({"MPLBACKEND": "module://matplotlib_inline.backend_inline", **extra})
    return env


def test_compare_runs(notebook_project, tmp_path):
    nb = execute("compare_runs.ipynb", cwd=tmp_path,
                 env=notebook_env(notebook_project,
                                  CONTRASTIVE_SIGNALS_PROJECT=str(notebook_project)))
    text = outputs_text(nb)
    assert "3 runs in sqlite:///" in text
    latest = json.loads((notebook_project / "data/08_reporting/sleep_metrics.json").read_text())
    assert "sleep.kappa" in text and f"{latest['sleep.epoch_acc']:.4f}" in text
    assert "simclr.train_loss" in text
    assert re.search(r"sleep: 2 runs; differing parameters: \[.*'sleep\.training\.fit\.seed'", text)
    assert images(nb) >= 3  # key figures, figures by parameter, training curves


def test_explore_encoder_from_the_projects_notebooks_folder(notebook_project):
    """Run from <project>/notebooks/ with no project path and no tracking URI given, as a user
    opening it in Jupyter: the project is found from the working directory, conf/test comes
    from KEDRO_ENV, and kedro-mlflow opens the project's mlflow.db (no stray store in
    notebooks/)."""
    folder = notebook_project / "notebooks"
    folder.mkdir(exist_ok=True)
    shutil.copy(NOTEBOOKS / "explore_encoder.ipynb", folder)
    nb = execute("explore_encoder.ipynb", cwd=folder,
                 env=notebook_env(notebook_project, tracking_uri=False, KEDRO_ENV="test"))
    assert sorted(p.name for p in folder.iterdir()) == ["explore_encoder.ipynb"]
    text = outputs_text(nb)
    assert f"project: {notebook_project}" in text
    assert re.search(r"test embeddings \(\d+, \d+\), raw pixels \(\d+, 784\)", text)
    assert "same label among 8 neighbours" in text
    assert images(nb) >= 2  # t-SNE, neighbours


def test_sleep_night(notebook_project, tmp_path):
    """Project path through the environment; the night and the epoch injected after the
    parameters cell (papermill's way)."""
    predictions = torch.load(notebook_project / "data/07_model_output/sleep_test_predictions.pt",
                             weights_only=True)
    night = predictions["recordings"][-1]["name"]
    nb = execute("sleep_night.ipynb", cwd=tmp_path,
                 env=notebook_env(notebook_project, KEDRO_ENV="test",
                                  CONTRASTIVE_SIGNALS_PROJECT=str(notebook_project)),
                 inject=f"NIGHT = {night!r}\nEPOCH = 3")
    text = outputs_text(nb)
    metrics = json.loads((notebook_project / "data/08_reporting/sleep_metrics.json").read_text())
    # conf/test keeps one test night: its accuracy is the run's sleep.epoch_acc
    assert len(predictions["recordings"]) == 1
    assert f"accuracy {metrics['sleep.epoch_acc']:.3f}" in text
    assert re.search(rf"night {night}: \S+-PSG\.edf, \S+-Hypnogram\.edf", text)
    assert images(nb) >= 3  # hypnogram, spectra, 30 s of signal
    assert re.search(r"epoch 3: scored \w+, predicted \w+, \d+-\d+ s of \S+-PSG\.edf", text)


def test_a_notebook_outside_any_project_says_how_to_point_it(tmp_path):
    env = notebook_env(tmp_path)
    with pytest.raises(nbclient.exceptions.CellExecutionError,
                       match=r"no Kedro project at or above .*: set PROJECT_PATH \(or "
                             r"CONTRASTIVE_SIGNALS_PROJECT\)"):
        execute("compare_runs.ipynb", cwd=tmp_path, env=env)


def test_every_notebook_is_executed_here():
    tested = {"compare_runs.ipynb", "explore_encoder.ipynb", "sleep_night.ipynb"}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == tested
