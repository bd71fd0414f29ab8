"""The MLflow server on loopback over a project's store after `kedro run --env=test`: the
REST API returns the run, its parameters, metric histories and artifacts, and the UI in a
headless browser lists the run, draws a metric chart and shows a logged plot."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.servers import (
    MLFLOW_READY_PATH,
    MLFLOW_SERVER_ENV,
    free_port,
    is_served,
    live_group_members,
    mlflow_command,
    prepare_mlflow_page,
    start_server,
    stop_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXPERIMENT = "contrastive_signals"
HISTORY = "simclr.train_loss"  # a per-epoch metric history (one value per epoch)
PLOT = "plots/training_curves.png"


class Api:
    def __init__(self, base_url: str) -> None:
        self.base = base_url + "/api/2.0/mlflow/"

    def get(self, endpoint: str, **query):
        url = self.base + endpoint + "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def post(self, endpoint: str, body: dict):
        request = urllib.request.Request(self.base + endpoint, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


def test_mlflow_server_api_and_ui_show_the_run(browser, browsed_project, page, tmp_path):
    port = free_port()
    server = start_server(
        "mlflow", mlflow_command(browsed_project, port), port=port,
        ready_path=MLFLOW_READY_PATH, cwd=browsed_project, log_path=tmp_path / "mlflow.log",
        env=MLFLOW_SERVER_ENV, timeout=180)
    print(f"mlflow server answered {MLFLOW_READY_PATH} {server.ready_seconds:.1f} s after start")
    try:
        api = Api(server.url)
        experiment = api.get("experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
        experiment_id = experiment["experiment_id"]
        runs = api.post("runs/search", {"experiment_ids": [experiment_id],
                                        "filter": "attributes.status = 'FINISHED'",
                                        "order_by": ["attributes.start_time DESC"]})["runs"]
        assert runs, f"no finished run in {EXPERIMENT}"
        run = runs[0]
        run_id = run["info"]["run_id"]
        assert run["info"]["run_name"] == "__default__"
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert float(params["pretraining.simclr.method.temperature"]) > 0
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert 0 <= metrics["simclr.linear_probe.acc"] <= 1

        history = api.get("metrics/get-history", run_id=run_id, metric_key=HISTORY)["metrics"]
        epochs = int(params["pretraining.simclr.fit.epochs"])
        assert [m["step"] for m in history] == list(range(epochs))

        top = {f["path"] for f in api.get("artifacts/list", run_id=run_id)["files"]}
        assert {"models", "plots", "reports", "histories"} <= top
        plots = {f["path"] for f in api.get("artifacts/list", run_id=run_id, path="plots")["files"]}
        assert PLOT in plots
        url = f"{server.url}/get-artifact?" + urllib.parse.urlencode({"path": PLOT,
                                                                      "run_uuid": run_id})
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"

        # The UI: classic (model training) view of the experiment.
        prepare_mlflow_page(page)
        started = time.perf_counter()
        page.goto(f"{server.url}/#/experiments/{experiment_id}/runs"
                  "?workflowType=machine_learning")
        run_link = page.get_by_role("link", name=run["info"]["run_name"]).first
        run_link.wait_for()
        print(f"runs table shown {time.perf_counter() - started:.1f} s after opening the page")
        page.screenshot(path=str(tmp_path / "mlflow_runs.png"))

        # A metric history drawn as a line chart on the run's model-metrics tab.
        page.goto(f"{server.url}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics"
                  "?workflowType=machine_learning")
        page.get_by_placeholder("Search metric charts").fill(HISTORY)
        chart = page.locator('[data-testid="experiment-view-compare-runs-card"]',
                             has_text=HISTORY).first
        chart.locator(".js-plotly-plot .scatterlayer path.js-line").first.wait_for()
        assert chart.locator(".js-plotly-plot .scatterlayer .point").count() >= len(history)
        page.screenshot(path=str(tmp_path / "mlflow_metric_chart.png"))

        # A logged plot shown from the artifact store.
        page.goto(f"{server.url}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{PLOT}"
                  "?workflowType=machine_learning")
        page.wait_for_function("() => [...document.images].some(i => i.complete && "
                               "i.naturalWidth > 100 && i.src.startsWith('blob:'))")
        page.screenshot(path=str(tmp_path / "mlflow_artifact.png"))
        print(f"screenshots in {tmp_path}")
    finally:
        stop_server(server)

    assert not live_group_members(server.process.pid), "mlflow server left processes behind"
    assert not is_served(port), f"something still serves 127.0.0.1:{port}"
