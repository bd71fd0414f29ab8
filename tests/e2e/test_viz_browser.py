"""kedro-viz in a real headless browser: every registered pipeline draws its graph, and a
plot dataset shows its preview. The server runs in its own process group and is gone
afterwards."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.project import PROJECT_ROOT, kedro
from tests.e2e.servers import (
    HOST,
    VIZ_READY_PATH,
    drawn_node_names,
    free_port,
    is_served,
    live_group_members,
    open_viz,
    running,
    select_pipeline,
    start_server,
    stop_server,
    viz_command,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

READY_FIGURES = PROJECT_ROOT / "benchmarks" / "results" / "viz_ready.json"
# The tracked figure is rewritten only on request (`make bench` sets this), so that
# `make test` leaves a clean checkout clean.
RECORD_READY_ENV = "CONTRASTIVE_SIGNALS_RECORD_VIZ_READY"


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _record_ready_time(seconds: float, tmp_path: Path) -> None:
    import kedro_viz

    figures = {
        "kedro_viz.ready.seconds": round(seconds, 3),
        "kedro_viz.ready.cpu_count": os.cpu_count(),
    }
    text = json.dumps(figures, indent=2) + "\n"
    (tmp_path / "viz_ready.json").write_text(text)
    if os.environ.get(RECORD_READY_ENV):
        READY_FIGURES.parent.mkdir(parents=True, exist_ok=True)
        READY_FIGURES.write_text(text)
    print(f"kedro-viz {kedro_viz.__version__} answered {VIZ_READY_PATH} {seconds:.1f} s after "
          f"start ({platform.machine()}, {figures['kedro_viz.ready.cpu_count']} CPUs)")


def _top_level_ids(pipeline_json: dict) -> set[str]:
    """Ids kedro-viz draws for a pipeline with every namespace collapsed: the children of
    the root modular pipeline, parameters excluded (hidden by default)."""
    parameters = {n["id"] for n in pipeline_json["nodes"] if n["type"] == "parameters"}
    children = pipeline_json["modular_pipelines"]["__root__"]["children"]
    return {child["id"] for child in children} - parameters


def _open_plot_preview(page, url: str, main: dict) -> str:
    """Click a matplotlib dataset node and wait for its image preview; returns its name.
    Takes one drawn at the top level of __default__, else expands every namespace."""
    plots = [n for n in main["nodes"] if n["type"] == "data"
             and (n.get("dataset_type") or "").endswith("MatplotlibDataset")]
    assert plots, "no matplotlib dataset in the catalog"
    drawn = set(page.locator("g.pipeline-node").evaluate_all("els => els.map(e => e.dataset.id)"))
    plot = next((p for p in plots if p["id"] in drawn), None)
    if plot is None:
        page.goto(f"{url}/?pid=__default__&expandAllPipelines=true")
        page.wait_for_selector("g.pipeline-node")
        plot = plots[0]
    page.locator(f'g.pipeline-node[data-id="{plot["id"]}"]').click()
    image = page.locator("img.pipeline-metadata__plot-image").first
    image.wait_for(state="visible")
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 100
    return plot["name"]


def test_viz_draws_every_pipeline_and_previews_a_plot(browser, browsed_project, page, tmp_path):
    from contrastive_signals.pipeline_registry import register_pipelines

    registered = list(register_pipelines())
    port = free_port()
    server = start_server(
        "kedro-viz", viz_command(port), port=port, ready_path=VIZ_READY_PATH,
        cwd=browsed_project, log_path=tmp_path / "kedro_viz.log", timeout=180,
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{browsed_project / 'mlflow.db'}"})
    try:
        _record_ready_time(server.ready_seconds, tmp_path)
        main = _get_json(server.url + "/api/main")
        assert sorted(p["id"] for p in main["pipelines"]) == sorted(registered)
        assert main["layers"], "no dataset declares `metadata: kedro-viz: layer`"

        started = time.perf_counter()
        open_viz(page, server.url)
        print(f"kedro-viz page drew its first graph in {time.perf_counter() - started:.1f} s")
        options = page.locator('[data-test="kedro-pipeline-selector"] .menu-option__content')
        assert sorted(options.evaluate_all("els => els.map(e => e.title)")) == sorted(registered)

        for name in registered:
            select_pipeline(page, name)
            expected = _top_level_ids(_get_json(f"{server.url}/api/pipelines/{name}"))
            nodes = page.locator("g.pipeline-node")
            # Wait for these ids, not a count: two pipelines can have as many top-level
            # nodes, and the previous one's graph stays drawn until the new one is laid out.
            try:
                page.wait_for_function(
                    "ids => { const drawn = [...document.querySelectorAll('g.pipeline-node')]"
                    ".map(e => e.dataset.id).sort();"
                    " return drawn.length === ids.length && drawn.every((d, i) => d === ids[i]); }",
                    arg=sorted(expected), timeout=30_000)
            except PlaywrightTimeout:
                pass  # the assertion below says what was drawn instead
            drawn = set(nodes.evaluate_all("els => els.map(e => e.dataset.id)"))
            assert drawn == expected, f"pipeline {name}: drawn {drawn} != api {expected}"
            labels = drawn_node_names(page)
            assert len(labels) == len(expected) and all(labels), f"{name}: unnamed nodes {labels}"
            page.screenshot(path=str(tmp_path / f"viz_{name}.png"))

        select_pipeline(page, "__default__")
        plot = _open_plot_preview(page, server.url, main)
        page.screenshot(path=str(tmp_path / "viz_plot_preview.png"))
        print(f"previewed {plot}; screenshots in {tmp_path}")
    finally:
        stop_server(server)

    assert not live_group_members(server.process.pid), "kedro-viz left processes behind"
    assert not is_served(port), f"something still serves 127.0.0.1:{port}"


def test_viz_build_writes_a_static_site_with_previews(browser, browsed_project, page, tmp_path):
    """`make viz-build`: kedro-viz as static files in build/, shown by a plain static file
    server (no Kedro, no kedro-viz). Browsers refuse the site's ES modules from file://."""
    build = browsed_project / "build"
    shutil.rmtree(build, ignore_errors=True)
    started = time.perf_counter()
    kedro(browsed_project, "viz", "build", "--include-previews")
    print(f"kedro viz build took {time.perf_counter() - started:.1f} s")
    assert (build / "index.html").is_file()
    main = json.loads((build / "api" / "main").read_text())
    assert {p["id"] for p in main["pipelines"]} >= {"__default__"}

    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", HOST, "--directory", str(build),
               str(port)]
    with running("static build", command, port=port, ready_path="/index.html", cwd=build,
                 log_path=tmp_path / "http_server.log") as server:
        open_viz(page, server.url + "/")
        assert page.locator("g.pipeline-node").count() > 0
        plot = _open_plot_preview(page, server.url, main)
        page.screenshot(path=str(tmp_path / "viz_static_preview.png"))
        print(f"static site previewed {plot}")
    assert not is_served(port)
