"""Screenshots for the README from real runs: the kedro-viz pipeline graph, an MLflow
comparison of two runs, and the pictures of a real sweep (MLflow's comparison of its trials,
Optuna's plots).

    .venv/bin/python scripts/screenshots.py                    # two small runs in a temp copy
    .venv/bin/python scripts/screenshots.py --source project   # this project's data/, mlflow.db

``--source temp`` (default) copies pyproject.toml and conf/ into a temporary folder and runs
``kedro run --env=test`` twice there (the second with another SimCLR temperature, so that the
comparison shows a difference; about 5 minutes on 2 CPU cores). ``--source project`` uses the
project's own data/ (for the previews) and mlflow.db (needs two finished runs: ``make run``
twice). kedro-viz and the MLflow server run on 127.0.0.1 and are stopped afterwards; the
browser is Debian's Chromium, headless, and reaches nothing but loopback.

``--source temp`` also runs the ``tiny`` sweep (conf/test, about a minute); ``--sweep-project
DIR`` takes the sweep pictures from the newest finished sweep in DIR's mlflow.db instead (e.g.
the project copy where ``make sweep SWEEP=digits_simclr`` ran).

Writes docs/images/pipeline_graph.png, mlflow_compare.png, sweep_compare.png and
sweep_{optimization_history,param_importances,parallel_coordinate}.png (each < 500 KB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.project import kedro, make_project_copy, project_env  # noqa: E402
from tests.e2e.servers import (  # noqa: E402
    MLFLOW_READY_PATH,
    MLFLOW_SERVER_ENV,
    VIZ_READY_PATH,
    chromium_missing_reason,
    free_port,
    launch_chromium,
    mlflow_command,
    open_viz,
    prepare_mlflow_page,
    running,
    viz_command,
)

EXPERIMENT = "contrastive_signals"
MAX_BYTES = 500_000
SECOND_RUN_PARAMS = "pretraining.simclr.method.temperature=0.5"
VIZ_PIPELINE = "pretraining"


def log(message: str) -> None:
    print(f"[screenshots] {message}", flush=True)


def shrink_png(path: Path, max_bytes: int = MAX_BYTES) -> None:
    """Re-save as a 256-colour palette PNG when the screenshot is too large (UI pictures
    have few colours, so this is visually lossless)."""
    if path.stat().st_size <= max_bytes:
        return
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)
    if path.stat().st_size > max_bytes:
        raise RuntimeError(f"{path} is {path.stat().st_size} bytes even as a palette PNG")


def finished_runs(base_url: str, status: str = "FINISHED") -> list[dict]:
    def call(endpoint: str, body: dict | None = None):
        url = f"{base_url}/api/2.0/mlflow/{endpoint}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    experiment = call(f"experiments/get-by-name?experiment_name={EXPERIMENT}")["experiment"]
    return call("runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                "filter": f"attributes.status = '{status}'" if status else "",
                                "max_results": 1000,
                                "order_by": ["attributes.start_time DESC"]}).get("runs", [])


def pipeline_graph(browser, project: Path, out: Path, logs: Path) -> None:
    port = free_port()
    with running("kedro-viz", viz_command(port), port=port, ready_path=VIZ_READY_PATH,
                 cwd=project, env=project_env(project), log_path=logs / "kedro_viz.log",
                 timeout=180) as server:
        log(f"kedro-viz ready in {server.ready_seconds:.1f} s at {server.url}")
        page = browser.new_page(viewport={"width": 1800, "height": 1100})
        # One pipeline, unfolded, at the zoom that fits it: every node name reads (the whole
        # __default__ graph fits a picture only at ~15 %, where none does).
        open_viz(page, f"{server.url}/?pid={VIZ_PIPELINE}&expandAllPipelines=true")
        minimap = page.locator('[data-test="sidebar-minimap-btn-true"]')
        if minimap.count():
            minimap.click()  # the minimap would cover the bottom-left of the graph
        page.locator('[data-test="sidebar-reset-zoom-btn"]').click()
        page.mouse.move(900, 5)  # no tooltip in the picture
        page.wait_for_timeout(2500)  # let the zoom transition settle
        page.screenshot(path=str(out))
        page.close()


def mlflow_compare(browser, project: Path, out: Path, logs: Path) -> None:
    port = free_port()
    with running("mlflow", mlflow_command(project, port), port=port,
                 ready_path=MLFLOW_READY_PATH, cwd=project, env=MLFLOW_SERVER_ENV,
                 log_path=logs / "mlflow.log", timeout=180) as server:
        log(f"mlflow server ready in {server.ready_seconds:.1f} s at {server.url}")
        runs = finished_runs(server.url)
        if len(runs) < 2:
            raise SystemExit(f"the comparison needs two finished runs in {EXPERIMENT}, found "
                             f"{len(runs)} (run `make run` again, or use --source temp)")
        experiment_id = runs[0]["info"]["experiment_id"]
        page = browser.new_page(viewport={"width": 1500, "height": 1450})
        prepare_mlflow_page(page)
        page.goto(f"{server.url}/#/experiments/{experiment_id}/runs"
                  "?workflowType=machine_learning")
        page.get_by_role("link", name=runs[0]["info"]["run_name"]).first.wait_for()
        # Select the two newest runs in the runs table, then open "Compare".
        boxes = page.locator('input[aria-label^="Press Space to toggle row selection"]')
        boxes = boxes.filter(visible=True)
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.get_by_role("button", name="Compare").click()
        page.get_by_text("Comparing 2 Runs").wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        # Parameters and metrics: only what differs between the two runs; tags folded.
        for switch in page.get_by_role("switch").all()[:2]:
            if switch.get_attribute("aria-checked") == "false":
                switch.click()
        page.get_by_text("Tags", exact=True).click()
        page.get_by_text("Comparing 2 Runs").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.mouse.move(1400, 5)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out))
        page.close()


def newest_sweep(base_url: str) -> tuple[dict, list[dict]]:
    """The newest finished sweep's parent run and its child runs (finished or pruned)."""
    runs = finished_runs(base_url, status="")
    parents = [r for r in runs if _tag(r, "sweep.role") == "study"
               and r["info"]["status"] == "FINISHED"]
    if not parents:
        raise SystemExit("no finished sweep in the store: run `make sweep` first")
    parent = parents[0]
    children = [r for r in runs if _tag(r, "mlflow.parentRunId") == parent["info"]["run_id"]]
    return parent, children


def _params(run: dict) -> list[str]:
    return [param["key"] for param in run["data"].get("params", [])]


def _tag(run: dict, key: str) -> str | None:
    return next((t["value"] for t in run["data"].get("tags", []) if t["key"] == key), None)


def plot_against_objective(page, parameters: list[str], metric: str = "objective") -> None:
    """MLflow's parallel-coordinates plot starts with the first three parameters and the first
    metric; choose every swept parameter and the sweep's objective instead."""
    parameter_box, metric_box = page.locator(".du-bois-light-select-selector").all()[:2]

    def chosen(box) -> list[str]:
        return box.locator(".du-bois-light-select-selection-item-content").all_inner_texts()

    def choose(box, name: str) -> None:
        box.click()
        page.locator(f'.du-bois-light-select-item-option[title="{name}"]').click()
        page.keyboard.press("Escape")

    for name in parameters:
        if name not in chosen(parameter_box):
            choose(parameter_box, name)
    if metric not in chosen(metric_box):
        choose(metric_box, metric)
    for other in [name for name in chosen(metric_box) if name != metric]:
        metric_box.locator(".du-bois-light-select-selection-item", has_text=other).locator(
            ".du-bois-light-select-selection-item-remove").click()


def sweep_pictures(browser, project: Path, out: Path, logs: Path) -> list[Path]:
    """MLflow's comparison of a sweep's trials (parallel coordinates of the swept parameters
    against the objective, the table of what differs) and Optuna's plots of its parent run."""
    port = free_port()
    with running("mlflow", mlflow_command(project, port), port=port,
                 ready_path=MLFLOW_READY_PATH, cwd=project, env=MLFLOW_SERVER_ENV,
                 log_path=logs / "mlflow_sweep.log", timeout=180) as server:
        parent, children = newest_sweep(server.url)
        children = [c for c in children if "objective" in
                    {m["key"] for m in c["data"].get("metrics", [])}]
        experiment_id = parent["info"]["experiment_id"]
        ids = json.dumps([c["info"]["run_id"] for c in children])
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        prepare_mlflow_page(page)
        page.goto(f"{server.url}/#/compare-runs?runs={ids}&experiments=[\"{experiment_id}\"]")
        page.get_by_text(f"Comparing {len(children)} Runs").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for()
        plot_against_objective(page, sorted({key for child in children
                                             for key in _params(child)}))
        for switch in page.get_by_role("switch").all()[:2]:
            if switch.get_attribute("aria-checked") == "false":
                switch.click()
        page.mouse.move(1400, 5)
        page.wait_for_timeout(2500)
        compare = out / "sweep_compare.png"
        page.screenshot(path=str(compare))
        page.close()
    written = [compare]
    artifacts = Path(parent["info"]["artifact_uri"].removeprefix("file://")) / "optuna"
    for name in ("optimization_history", "param_importances", "parallel_coordinate"):
        source = artifacts / f"{name}.png"
        if source.exists():
            shutil.copyfile(source, out / f"sweep_{name}.png")
            written.append(out / f"sweep_{name}.png")
    log(f"sweep {_tag(parent, 'sweep.name')}: {len(children)} finished trials compared")
    return written


def run_tiny_sweep(project: Path) -> None:
    log(f"sweep tiny --env test in {project}")
    command = [sys.executable, "-m", "contrastive_signals.sweep", "run", "tiny",
               "--env", "test", "--no-report", "--project", str(project)]
    result = subprocess.run(command, cwd=project, env=project_env(project),
                            capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise SystemExit(f"the tiny sweep failed:\n{result.stderr[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("temp", "project"), default="temp",
                        help="temp: two `kedro run --env=test` in a temporary copy (default); "
                             "project: this project's data/ and mlflow.db")
    parser.add_argument("--project-dir", type=Path, default=ROOT,
                        help="with --source project: the project folder (default: this one)")
    parser.add_argument("--sweep-project", type=Path, default=None,
                        help="the project folder whose mlflow.db holds a finished sweep "
                             "(default: the tiny sweep, run in the temporary copy)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()

    reason = chromium_missing_reason()
    if reason:
        raise SystemExit(f"cannot take screenshots: {reason}")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        tmp = Path(tmp)
        if args.source == "temp":
            (tmp / "project").mkdir()
            project = make_project_copy(tmp / "project")
            for extra in ([], ["--params", SECOND_RUN_PARAMS]):
                started = time.perf_counter()
                log(f"{' '.join(['kedro run --env=test', *extra])} in {project}")
                kedro(project, "run", "--env=test", *extra, timeout=1200)
                log(f"  done in {time.perf_counter() - started:.0f} s")
            if args.sweep_project is None:
                run_tiny_sweep(project)
        else:
            project = args.project_dir.resolve()
        logs = tmp / "logs"
        logs.mkdir()

        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                targets = {"pipeline_graph.png": pipeline_graph}
                if args.source == "temp":  # two plain runs; a sweep's store has trials
                    targets["mlflow_compare.png"] = mlflow_compare
                for name, take in targets.items():
                    path = args.out / name
                    take(browser, project, path, logs)
                    shrink_png(path)
                    log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
                        f" ({path.stat().st_size / 1000:.0f} KB)")
                sweep_project = (args.sweep_project or project).resolve()
                for path in sweep_pictures(browser, sweep_project, args.out, logs):
                    shrink_png(path)
                    log(f"wrote {path} ({path.stat().st_size / 1000:.0f} KB)")
            finally:
                browser.close()


if __name__ == "__main__":
    main()
