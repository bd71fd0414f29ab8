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

from tests.e2e.project import project_env

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


# Runs in a fresh interpreter: loads the model with MLflow alone and checks that Kedro's
# session was never imported.
PYFUNC_SCRIPT = """
import json, sys
import numpy as np
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
data = np.load(sys.argv[2])
params = json.loads(sys.argv[4])
out = model.predict(data, params=params or None)
np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in out.items()})
print(json.dumps({"kedro_session_imported": "kedro.framework.session" in sys.modules}))
"""


def pyfunc_predict(project: Path, uri: str, data_path: Path, out_path: Path,
                   params: dict | None = None) -> dict:
    """``mlflow.pyfunc.load_model(uri).predict(np.load(data_path))`` in a subprocess; the
    outputs are saved to ``out_path`` (npz); returns the script's report."""
    result = subprocess.run([sys.executable, "-c", PYFUNC_SCRIPT, uri, str(data_path),
                             str(out_path), json.dumps(params or {})],
                            cwd=project, env=project_env(project), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refused(url: str, bad: dict[str, dict]) -> None:
    """Every body of ``bad`` (name -> request) gets a 4xx with a message and no traceback."""
    for what, body in bad.items():
        status, answer = post_json(url, body)
        assert 400 <= status < 500, (what, status, answer)
        assert answer.get("message") and "Traceback" not in answer["message"], (what, answer)
