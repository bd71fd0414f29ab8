"""Inference latency and throughput, side by side in one run: the served endpoint (`mlflow
models serve --env-manager local`, real HTTP on loopback), the pyfunc model loaded in-process,
and the Kedro inference pipeline (`kedro run --pipeline=<task>_inference`), for the digits
encoder and the sleep stager; the stager both ways a request can carry a night: the array
model ``sleep`` (a JSON float tensor ``[1, 3, L]``) and the EDF model ``sleep_edf`` (the EDF
file's bytes, base64, in the string column ``edf_base64``).

Setup (not timed): a throwaway project copy; a conf/test `sleep` run (2 training epochs: the
network has its default size, only its weights are worse) and a conf/test run up to the
`triplet_scratch` evaluation (the default CNN encoder), the models registered as
``models:/<name>@champion``; one synthetic 8-hour night (3 channels at 100 Hz) written as
EDF+.

Figures (flat JSON): per path and task ``<task>.<path>.p50_ms`` / ``p95_ms`` of one request
(one digit; one whole night), ``<task>.<path>.items_per_s`` in batches (256 digits per
request; nights one per request), the endpoints' time split (client encoding, HTTP round
trip), the first request after the server started (``first_ms``), the Kedro run's wall
seconds, and the load average before each part and at the end. End to end for a night
means from the file on the client's disk (EDF: read + base64 + JSON; array: the decoded
signals + JSON) to the decoded answer.

    python benchmarks/inference_latency.py --out benchmarks/results/inference_latency.json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from bench_common import machine_info, write_figures

from tests.e2e.inference_helpers import serve_command, serve_env
from tests.e2e.project import KEDRO, PROJECT_ROOT, make_project_copy, project_env
from tests.e2e.servers import free_port, running

CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]


def _kedro(project: Path, *args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(KEDRO), *args], cwd=project, env=project_env(project),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"kedro {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def _percentiles(prefix: str, seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {f"{prefix}.p50_ms": round(float(np.percentile(ms, 50)), 2),
            f"{prefix}.p95_ms": round(float(np.percentile(ms, 95)), 2),
            f"{prefix}.repeats": len(seconds)}


def _timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return answer.read()


def _setup(project: Path) -> dict[str, float]:
    seconds = {"setup.sleep_train_s": _kedro(project, "run", "--env=test", "--pipeline=sleep",
                                             "--params", "sleep.training.fit.epochs=2"),
               "setup.digits_train_s": _kedro(project, "run", "--env=test",
                                              "--to-nodes=evaluation.triplet_scratch.evaluate",
                                              "--params",
                                              "inference.digits.encoder=triplet_scratch")}
    subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts/register_model.py"), "sleep",
                     "sleep_edf", "digits"], cwd=project, env=project_env(project), check=True,
                    capture_output=True)
    return seconds


def _night(project: Path) -> tuple[np.ndarray, float, Path]:
    """One synthetic 8-hour night written as EDF+ into the sleep inference folder: its
    signals, sampling rate and file."""
    from contrastive_signals.data.sleep_edf import read_psg
    from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
    from contrastive_signals.io.sleep_edf_dataset import write_psg_edf

    config = SyntheticSleepConfig(n_subjects=1, sleep_hours=7.0, wake_before_minutes=30.0,
                                  wake_after_minutes=30.0, seed=7)
    raw = next(v for k, v in synthetic_sleep_edf(config).items() if k.endswith("-PSG.edf"))
    folder = project / "data/01_raw/inference/sleep"
    folder.mkdir(parents=True, exist_ok=True)
    write_psg_edf(raw, folder / "SC4001E0-PSG.edf")
    return (*read_psg(folder / "SC4001E0-PSG.edf", channels=CHANNELS),
            folder / "SC4001E0-PSG.edf")


def _edf_request(path: Path) -> bytes:
    """The ``sleep_edf`` request body of an EDF file: its bytes, base64, in ``edf_base64``."""
    text = base64.b64encode(path.read_bytes()).decode("ascii")
    return json.dumps({"dataframe_split": {"columns": ["edf_base64"], "data": [[text]]}}).encode()


def _array_endpoint(project: Path, signals: np.ndarray, rate: float, expected: dict,
                    repeats: int) -> dict[str, object]:
    """The ``sleep`` endpoint fed the night as a JSON float tensor (client encoding, round
    trip, end to end)."""
    figures: dict[str, object] = {}
    port = free_port()
    with running("mlflow-serve-sleep", serve_command("models:/sleep@champion", port),
                 port=port, ready_path="/ping", cwd=project, log_path=project / "s.log",
                 env=serve_env(project), timeout=300) as server:
        url = f"{server.url}/invocations"
        encode = _timed(lambda: json.dumps({"inputs": signals[None].tolist(),
                                            "params": {"sampling_rate": rate}}).encode(),
                        repeats, warmup=0)
        body = json.dumps({"inputs": signals[None].tolist(),
                           "params": {"sampling_rate": rate}}).encode()
        figures["sleep.endpoint.request_mb"] = round(len(body) / 1e6, 1)
        figures["sleep.endpoint.client_json_encode_ms.p50"] = round(statistics.median(encode) * 1000, 1)
        answers = []
        round_trip = _timed(lambda: answers.append(json.loads(_post(url, body))),
                            repeats, warmup=1)
        figures.update(_percentiles("sleep.endpoint.round_trip", round_trip))
        end_to_end = [e + r for e, r in zip(encode, round_trip, strict=True)]
        figures.update(_percentiles("sleep.endpoint", end_to_end))
        figures["sleep.endpoint.items_per_s"] = round(1 / statistics.median(end_to_end), 3)
        figures["sleep.endpoint.equals_pyfunc"] = bool(np.allclose(
            answers[-1]["predictions"]["probabilities"], expected["probabilities"], atol=1e-6))
    return figures


def _kedro_figures(project: Path, digits: np.ndarray, batch: np.ndarray) -> dict[str, object]:
    """Whole `kedro run --pipeline=<task>_inference` runs, start-up included."""
    figures: dict[str, object] = {}
    figures["loadavg.kedro_1min"] = os.getloadavg()[0]
    inbox = project / "data/01_raw/inference/digits"
    inbox.mkdir(parents=True, exist_ok=True)
    np.save(inbox / "one.npy", digits[:1])
    kedro_one = [_kedro(project, "run", "--env=test", "--pipeline=digits_inference")
                 for _ in range(3)]
    figures.update(_percentiles("digits.kedro", kedro_one))
    np.save(inbox / "one.npy", batch)
    figures["digits.kedro.items_per_s"] = round(
        256 / _kedro(project, "run", "--env=test", "--pipeline=digits_inference"), 1)
    kedro_night = [_kedro(project, "run", "--env=test", "--pipeline=sleep_inference")
                   for _ in range(3)]
    figures.update(_percentiles("sleep.kedro", kedro_night))
    figures["sleep.kedro.items_per_s"] = round(1 / statistics.median(kedro_night), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/inference_latency.json"))
    parser.add_argument("--repeats", type=int, default=30, help="single-digit requests")
    parser.add_argument("--night-repeats", type=int, default=5,
                        help="whole-night requests (array form and pyfunc)")
    parser.add_argument("--edf-repeats", type=int, default=20,
                        help="whole-night requests to the EDF endpoint")
    parser.add_argument("--skip-slow", action="store_true",
                        help="leave out the array endpoint (~30 s a night) and the Kedro runs")
    args = parser.parse_args()
    figures: dict[str, object] = {"loadavg.before_1min": os.getloadavg()[0],
                                  "skip_slow": args.skip_slow}
    with tempfile.TemporaryDirectory() as folder:
        project = make_project_copy(Path(folder))
        figures.update({k: round(v, 1) for k, v in _setup(project).items()})
        signals, rate, night_file = _night(project)
        figures["sleep.night_hours"] = round(signals.shape[1] / rate / 3600, 2)
        splits = __import__("torch").load(project / "data/03_primary/digit_splits.pt",
                                          weights_only=True)
        digits = splits["test"]["images"][:, 0].numpy().astype(np.float32)
        batch = np.resize(digits, (256, *digits.shape[1:]))
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
        import mlflow

        # ---- pyfunc in-process
        figures["loadavg.pyfunc_1min"] = os.getloadavg()[0]
        models = {task: mlflow.pyfunc.load_model(f"models:/{task}@champion")
                  for task in ("digits", "sleep", "sleep_edf")}
        one = _timed(lambda: models["digits"].predict(digits[:1]), args.repeats)
        figures.update(_percentiles("digits.pyfunc", one))
        many = _timed(lambda: models["digits"].predict(batch), 5)
        figures["digits.pyfunc.items_per_s"] = round(256 / statistics.median(many), 1)
        nights = _timed(lambda: models["sleep"].predict(signals[None], params={"sampling_rate": rate}),
                        args.night_repeats, warmup=1)
        figures.update(_percentiles("sleep.pyfunc", nights))
        figures["sleep.pyfunc.items_per_s"] = round(1 / statistics.median(nights), 3)
        expected = models["sleep"].predict(signals[None], params={"sampling_rate": rate})
        import pandas as pd

        edf_nights = _timed(lambda: models["sleep_edf"].predict(pd.DataFrame(
            {"edf_base64": [base64.b64encode(night_file.read_bytes()).decode("ascii")]})),
            args.night_repeats, warmup=1)
        figures.update(_percentiles("sleep_edf.pyfunc", edf_nights))
        figures["sleep_edf.pyfunc.items_per_s"] = round(1 / statistics.median(edf_nights), 3)

        # ---- served endpoints (one worker each): the EDF form first, then digits, the array
        figures["loadavg.endpoint_1min"] = os.getloadavg()[0]
        port = free_port()
        with running("mlflow-serve-sleep-edf", serve_command("models:/sleep_edf@champion", port),
                     port=port, ready_path="/ping", cwd=project, log_path=project / "e.log",
                     env=serve_env(project), timeout=300) as server:
            url = f"{server.url}/invocations"
            figures["sleep_edf.endpoint.first_ms"] = round(1000 * _timed(
                lambda: _post(url, _edf_request(night_file)), 1, warmup=0)[0], 1)
            encode = _timed(lambda: _edf_request(night_file), args.edf_repeats, warmup=1)
            body = _edf_request(night_file)
            figures["sleep_edf.endpoint.request_mb"] = round(len(body) / 1e6, 1)
            figures["sleep_edf.endpoint.client_encode_ms.p50"] = round(
                statistics.median(encode) * 1000, 1)
            answers = []
            end_to_end = _timed(lambda: answers.append(json.loads(_post(
                url, _edf_request(night_file)))), args.edf_repeats, warmup=1)
            figures.update(_percentiles("sleep_edf.endpoint", end_to_end))
            figures["sleep_edf.endpoint.items_per_s"] = round(1 / statistics.median(end_to_end), 3)
            got = pd.DataFrame(answers[-1]["predictions"])
            figures["sleep_edf.endpoint.equals_array_pyfunc"] = bool(np.allclose(
                got.filter(like="p_").to_numpy(), expected["probabilities"], atol=1e-6))

        port = free_port()
        with running("mlflow-serve-digits", serve_command("models:/digits@champion", port),
                     port=port, ready_path="/ping", cwd=project, log_path=project / "d.log",
                     env=serve_env(project), timeout=300) as server:
            url = f"{server.url}/invocations"
            body_one = json.dumps({"inputs": digits[:1].tolist()}).encode()
            figures.update(_percentiles("digits.endpoint", _timed(
                lambda: json.loads(_post(url, json.dumps({"inputs": digits[:1].tolist()}).encode())),
                args.repeats)))
            figures["digits.endpoint.request_bytes"] = len(body_one)
            many = _timed(lambda: json.loads(_post(url, json.dumps({"inputs": batch.tolist()}).encode())), 5)
            figures["digits.endpoint.items_per_s"] = round(256 / statistics.median(many), 1)
        if not args.skip_slow:
            figures.update(_array_endpoint(project, signals, rate, expected, args.night_repeats))
            figures.update(_kedro_figures(project, digits, batch))
    load = os.getloadavg()
    figures.update({"loadavg.after_1min": load[0], "loadavg.after_5min": load[1],
                    "loadavg.after_15min": load[2],
                    "goal.sleep_night_request_under_2s": figures["sleep_edf.endpoint.p50_ms"] < 2000,
                    "goal.digit_request_p50_under_50ms": figures["digits.endpoint.p50_ms"] < 50,
                    **machine_info("mlflow")})
    write_figures(figures, args.out)


if __name__ == "__main__":
    main()
