"""Helpers of the inference end-to-end tests: HTTP requests to a served model, the pyfunc
model in a plain Python subprocess, `mlflow models serve` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.project import PROJECT_ROOT, project_env

BIN = Path(sys.executable).parent


def post_json(url: str, body: dict, timeout: float = 120.0) -> tuple[int, dict]:
    """POST ``body`` as JSON; ``(status, decoded JSON answer)`` for 2xx and error answers."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def serve_command(uri: str, port: int) -> list[str]:
    return [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def serve_env(project: Path) -> dict[str, str]:
    """The project's store, and the venv's bin first on PATH (mlflow starts `uvicorn`)."""
    env = project_env(project)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


# Runs in a fresh interpreter: loads each model with MLflow alone, predicts its input (an
# .npy array, or a .json table), saves the output (.npz of arrays, or .csv of a table), and
# reports whether Kedro's session was ever imported.
PYFUNC_SCRIPT = """
import json, sys
import numpy as np
import pandas as pd
import mlflow
for job in json.loads(open(sys.argv[1]).read()):
    model = mlflow.pyfunc.load_model(job["uri"])
    if job["input"].endswith(".npy"):
        data = np.load(job["input"])
    else:
        data = pd.DataFrame(json.loads(open(job["input"]).read()))
    out = model.predict(data, params=job.get("params") or None)
    if isinstance(out, pd.DataFrame):
        out.to_csv(job["output"], index=False)
    else:
        np.savez(job["output"], **{k: np.asarray(v) for k, v in out.items()})
print(json.dumps({"kedro_session_imported": "kedro.framework.session" in sys.modules}))
"""


def pyfunc_predict(project: Path, jobs: list[dict], jobs_path: Path) -> dict:
    """``mlflow.pyfunc.load_model(uri).predict(input, params)`` for each job ``{"uri",
    "input", "output", "params"}`` in one plain Python subprocess (no Kedro); returns its
    report."""
    jobs_path.write_text(json.dumps(jobs))
    result = subprocess.run([sys.executable, "-c", PYFUNC_SCRIPT, str(jobs_path)],
                            cwd=project, env=project_env(project), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def register(project: Path, *kinds: str) -> str:
    """``scripts/register_model.py <kinds>`` in ``project`` (each as ``models:/<kind>@champion``)."""
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "register_model.py"),
                           *kinds], cwd=project, env=project_env(project), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_refused(url: str, bad: dict[str, dict]) -> None:
    """Every body of ``bad`` (name -> request) gets a 4xx with a message and no traceback."""
    for what, body in bad.items():
        status, answer = post_json(url, body)
        assert 400 <= status < 500, (what, status, answer)
        assert answer.get("message") and "Traceback" not in answer["message"], (what, answer)
