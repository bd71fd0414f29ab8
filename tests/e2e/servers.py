"""Servers on loopback and a headless Chromium, for the browser tests and
``scripts/screenshots.py``.

A server runs in its own process group (``start_new_session=True``), is ready when an HTTP
endpoint answers 200, and is stopped by signalling the whole group, so nothing it spawned
(kedro-viz's spawned server process, uvicorn workers) outlives it. The browser reaches only
127.0.0.1: every other request (web fonts, update checks) is aborted.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Debian's chromium, headless, nothing contacted at start-up; Playwright's own browser
# download is not used.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
QUIET_ENV = {"KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
             "DO_NOT_TRACK": "1", "TQDM_DISABLE": "1"}


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return (f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` "
                "(.ci/run does) or set CHROMIUM=/path/to/chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[viz]')"
    return None


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def loopback_only(page) -> None:
    """Abort every request that would leave the machine."""
    def route(route):
        url = route.request.url
        if url.startswith((f"http://{HOST}", "http://localhost", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", route)


def free_port(low: int = 20000, high: int = 49000) -> int:
    """A free loopback port in [low, high). Not the kernel's ephemeral range: kedro-viz
    refuses ports above 49151, and when its port is taken it silently moves to the next."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        if not is_served(port):
            return port
    raise RuntimeError(f"no free port in [{low}, {high}) on {HOST}")


def is_served(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def live_group_members(pgid: int) -> list[int]:
    """PIDs of processes in process group ``pgid`` that are still running (not zombies)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    ready_seconds: float = float("nan")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_server(name: str, command: Sequence[str], *, port: int, ready_path: str, cwd: Path,
                 log_path: Path, env: dict[str, str] | None = None,
                 timeout: float = 120.0) -> Server:
    """Start ``command`` in a new process group and wait until ``GET ready_path`` answers 200.

    ``ready_seconds`` is the time from starting the process to the first 200. Raises (after
    stopping the group) when the process exits first or ``timeout`` passes.
    """
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(command), cwd=cwd, env=full_env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = Server(name, process, port, log_path)
    deadline = started + timeout
    while True:
        if process.poll() is not None:
            stop_server(server)
            raise RuntimeError(f"{name} exited with {process.returncode} before answering "
                               f"{ready_path}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            pass
        if time.perf_counter() > deadline:
            stop_server(server)
            raise TimeoutError(f"{name} did not answer {ready_path} within {timeout:.0f} s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.25)
    server.ready_seconds = time.perf_counter() - started
    return server


def stop_server(server: Server, grace: float = 10.0) -> None:
    """SIGTERM to the server's whole process group; SIGKILL to whatever is left after
    ``grace`` seconds. Returns once no process of the group is running."""
    pgid = server.process.pid  # a session leader's group id is its pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        server.process.poll()
        if server.process.returncode is not None and not live_group_members(pgid):
            break
        time.sleep(0.2)
    if live_group_members(pgid) or server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    server.process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)


@contextlib.contextmanager
def running(name: str, command: Sequence[str], **kwargs):
    """``start_server`` as a context manager that always stops the group."""
    server = start_server(name, command, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


# ------------------------------------------------------------------------------ kedro-viz
def viz_command(port: int) -> list[str]:
    """kedro-viz 12.5 on loopback: no browser, no autoreload (autoreload is opt-in, `-a`)."""
    return [str(BIN / "kedro"), "viz", "run", "--host", HOST, "--port", str(port), "--no-browser"]


VIZ_READY_PATH = "/api/main"  # the graph data the page loads first


def open_viz(page, url: str, *, timeout_ms: float = 60_000) -> None:
    """Open kedro-viz with its feature tour off and dismiss the update reminder (kedro-viz
    cannot reach PyPI here, so it reports version "None" as new)."""
    page.add_init_script(
        "window.localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false}));")
    loopback_only(page)
    page.goto(url)
    page.wait_for_selector("g.pipeline-node", timeout=timeout_ms)
    dismiss = page.get_by_role("button", name="Dismiss")
    if dismiss.count():
        dismiss.first.click()


def select_pipeline(page, name: str) -> None:
    """Pick a registered pipeline in kedro-viz's pipeline selector (top of the sidebar)."""
    page.click('[data-test="kedro-pipeline-selector"] .dropdown__label')
    page.click(f'[data-test="kedro-pipeline-selector"] .menu-option__content[title="{name}"]')
    page.wait_for_function(
        "name => document.querySelector('[data-test=\"kedro-pipeline-selector\"] "
        ".dropdown__label')?.textContent.trim() === name", arg=name)


def drawn_node_names(page) -> list[str]:
    """Labels of the nodes drawn in the flowchart SVG."""
    return [text.strip() for text in
            page.locator("g.pipeline-node .pipeline-node__text").all_text_contents()]


# ------------------------------------------------------------------------------ MLflow
def mlflow_command(project: Path, port: int) -> list[str]:
    """The MLflow server over ``project``'s store. Runs logged straight to sqlite keep their
    artifacts under ``<project>/mlruns`` (the experiment's artifact location); the server
    reads those directly and proxies artifacts of experiments created through it to the
    same folder."""
    return [str(BIN / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}",
            "--artifacts-destination", str(project / "mlruns"),
            "--host", HOST, "--port", str(port), "--workers", "1"]


# mlflow 3.17's server also starts a job runner (a pool of huey consumers) for GenAI jobs;
# the UI and the REST API need none of it.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
MLFLOW_READY_PATH = "/health"


def prepare_mlflow_page(page) -> None:
    """Classic (model training) view of the MLflow UI, assistant panel closed."""
    page.add_init_script("""
        localStorage.setItem('mlflow.workflowType_v1', JSON.stringify('machine_learning'));
        localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
        localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
    """)
    loopback_only(page)
