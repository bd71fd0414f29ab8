"""`make run-all`: every pipeline of the project in sequence, then one summary table of their
key figures (stable metric names) and wall times against their budgets.

Each stage is one ``kedro run --pipeline=<name>`` in the project folder (so its outputs land in
``data/`` and its MLflow run in the project's store, as with ``make run``); its output is shown
as it runs and kept in ``<out-dir>/run_all_logs/<stage>.log``. A failed stage is recorded and
the next one still runs (``--stop-on-failure`` stops instead). At the end the summary is printed
and written to ``<out-dir>/run_all_summary.json`` and ``.md``; the exit code is 0 only when every
stage succeeded.

    python scripts/run_all.py                       # default sizes (over an hour on 2 cores)
    python scripts/run_all.py --env=test            # the tiny conf/test sizes (a few minutes)
    python scripts/run_all.py --only digits,ctc     # some stages (names or pipeline names)

Budgets are the per-pipeline targets of the README (wall time on 2 CPU cores at default
sizes); with ``--env=test`` the comparison is shown but says little.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from contrastive_signals.metrics.key_figures import KEY_FIGURES, matching

ROOT = Path(__file__).resolve().parents[1]
REPORTING = "data/08_reporting"
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class Stage:
    """One ``kedro run --pipeline=<pipeline>`` of the sequence.

    Attributes:
        name: the row's name in the summary (and of ``--only``).
        budget_minutes: wall-time target on 2 CPU cores at default sizes (``None``: none set).
        report: the flat ``{figure name: number}`` JSON the run writes (relative to the project).
        figures: the key figures shown, as ``fnmatch`` patterns over the report's names (a
            pattern such as ``ts.*.best.svm.acc`` picks one figure per dataset).
    """

    name: str
    pipeline: str
    budget_minutes: float | None
    report: str | None = None
    figures: tuple[str, ...] = ()


# Every registered pipeline is one of these or contained in one (tests/test_run_all.py
# checks it): `sleep` runs inside `ctc`, `timeseries_ucr` and `wav2vec` inside `timeseries`,
# the digits stages (ingestion ... evaluation) inside `__default__`. `signal_features` needs the
# sleep epochs and CTC sequences, so it comes after `ctc`.
STAGES: tuple[Stage, ...] = (
    Stage("digits", "__default__", 10, f"{REPORTING}/evaluation_metrics.json",
          KEY_FIGURES["__default__"]),
    Stage("ctc", "ctc", 10, f"{REPORTING}/ctc_metrics.json", KEY_FIGURES["ctc"]),
    Stage("signal_features", "signal_features", None),
    Stage("afm", "afm", 10, f"{REPORTING}/afm_metrics.json", KEY_FIGURES["afm"]),
    Stage("timeseries", "timeseries", 20, f"{REPORTING}/timeseries_metrics.json",
          KEY_FIGURES["timeseries"]),
    Stage("denoising", "denoising", 20, f"{REPORTING}/denoising_metrics.json",
          KEY_FIGURES["denoising"]),
    # reads the digits stage's features and encoders (issue 18; no golden report)
    Stage("generative", "generative", 15, f"{REPORTING}/generative_metrics.json",
          KEY_FIGURES["generative"]),
)


# ---------------------------------------------------------------- summary (pure functions)

def key_figures(report: dict[str, float], patterns: Iterable[str]) -> tuple[dict[str, float], list[str]]:
    """The report's figures matching ``patterns`` (``metrics.key_figures.matching``'s order)
    and the patterns that matched nothing."""
    names, missing = matching(report, patterns)
    return {name: report[name] for name in names}, missing


def stage_result(stage: Stage, *, returncode: int | None, seconds: float,
                 report: dict[str, float] | None, log_tail: str = "", interrupted: bool = False,
                 load_before: Sequence[float] = (), load_after: Sequence[float] = ()
                 ) -> dict[str, object]:
    """The summary row of one stage. ``returncode`` ``None``: not run, or stopped by Ctrl-C
    (``interrupted``)."""
    if returncode is None:
        status = "interrupted" if interrupted else "not run"
    elif returncode == 0:
        status = "ok"
    else:
        status = f"failed (exit {returncode})"
    figures, missing = key_figures(report or {}, stage.figures)
    if status == "ok" and stage.report and report is None:
        status = "no report"
    budget = None if stage.budget_minutes is None else stage.budget_minutes * 60.0
    return {
        "stage": stage.name, "pipeline": stage.pipeline, "status": status,
        "returncode": returncode, "seconds": round(seconds, 1), "budget_seconds": budget,
        "within_budget": None if budget is None or status != "ok" else seconds <= budget,
        "report": stage.report, "figures": figures, "missing_figures": missing,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "log_tail": log_tail if status != "ok" else "",
    }


def summarise(rows: list[dict[str, object]], *, env: str | None, started: str,
              cpus: int | None, machine: dict[str, str] | None = None) -> dict[str, object]:
    """The whole summary: rows plus totals (the sum of budgets counts stages that have one)."""
    budgets = [r["budget_seconds"] for r in rows if r["budget_seconds"] is not None]
    return {
        "env": env or "base", "started": started, "cpus": cpus, "machine": machine or {},
        "stages": rows,
        "total_seconds": round(sum(r["seconds"] for r in rows), 1),
        "total_budget_seconds": sum(budgets) if budgets else None,
        "all_ok": all(r["status"] == "ok" for r in rows),
        "all_within_budget": all(r["within_budget"] is not False for r in rows)
        and all(r["status"] == "ok" for r in rows),
    }


def format_seconds(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour); ``–`` for ``None``."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _share(seconds: float, budget: float | None) -> str:
    return "–" if not budget else f"{100 * seconds / budget:.0f} %"


def _figures_cell(row: dict[str, object]) -> str:
    parts = [f"`{name}` {value:.4g}" for name, value in row["figures"].items()]
    parts += [f"`{pattern}` missing" for pattern in row["missing_figures"]] if row["status"] == "ok" else []
    return ", ".join(parts) or "–"


def markdown(summary: dict[str, object]) -> str:
    """The summary as a Markdown table: one row per stage and a total row."""
    rows = summary["stages"]
    loads = [r["load_after"][0] for r in rows if r["load_after"]]
    load = f", 1-min load average after each stage {min(loads):.1f}-{max(loads):.1f}" if loads else ""
    lines = [
        f"# run-all summary ({summary['started']}, env `{summary['env']}`, "
        f"{summary['cpus']} CPUs{load})", "",
        "| stage | pipeline | status | wall time | budget | of budget | key figures |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['stage']} | `{r['pipeline']}` | {r['status']} | "
                     f"{format_seconds(r['seconds'])} | {format_seconds(r['budget_seconds'])} | "
                     f"{_share(r['seconds'], r['budget_seconds'])} | {_figures_cell(r)} |")
    ok = sum(r["status"] == "ok" for r in rows)
    budgeted = sum(r["seconds"] for r in rows if r["budget_seconds"] is not None)
    lines.append(f"| **total** | | {ok}/{len(rows)} ok | {format_seconds(summary['total_seconds'])} | "
                 f"{format_seconds(summary['total_budget_seconds'])} | "
                 f"{_share(budgeted, summary['total_budget_seconds'])} | |")
    return "\n".join(lines) + "\n"


def write_summary(summary: dict[str, object], out_dir: Path) -> tuple[Path, Path]:
    """``run_all_summary.json`` and ``run_all_summary.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "run_all_summary.json", out_dir / "run_all_summary.md"
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    md_path.write_text(markdown(summary))
    return json_path, md_path


def select_stages(only: str | None, stages: Sequence[Stage] = STAGES) -> list[Stage]:
    """The stages named in ``only`` (comma-separated stage or pipeline names, in the sequence's
    order), or all of them; an unknown name raises ``SystemExit`` listing the known ones."""
    if not only:
        return list(stages)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    known = {s.name for s in stages} | {s.pipeline for s in stages}
    unknown = sorted(wanted - known)
    if unknown:
        raise SystemExit(f"run_all: unknown stage(s) {unknown}; known: "
                         f"{', '.join(s.name for s in stages)}")
    return [s for s in stages if s.name in wanted or s.pipeline in wanted]


# ---------------------------------------------------------------- running

def machine_info(project: Path) -> dict[str, str]:
    """What a wall time depends on besides the code: the CPU model, the platform, Python, and
    the project's git commit (empty when not a git checkout)."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cpu": cpu, "platform": platform.platform(), "python": platform.python_version(),
            "commit": commit}


def child_env() -> dict[str, str]:
    """The environment of each ``kedro run``: ours, with the project's quiet defaults."""
    env = dict(os.environ)
    for key, value in {"KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
                       "DO_NOT_TRACK": "1", "OMP_WAIT_POLICY": "PASSIVE",
                       "TQDM_DISABLE": "1"}.items():
        env.setdefault(key, value)
    return env


def kedro_command(stage: Stage, env: str | None) -> list[str]:
    """``kedro run --pipeline=<stage's> [--env=<env>]`` with this Python's Kedro."""
    return ([sys.executable, "-m", "kedro", "run", f"--pipeline={stage.pipeline}"]
            + ([f"--env={env}"] if env else []))


def run_stage(stage: Stage, *, project: Path, env: str | None, log_dir: Path
              ) -> dict[str, object]:
    """One ``kedro run``, its output echoed and logged; its summary row."""
    command = kedro_command(stage, env)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{stage.name}.log"
    print(f"\n=== run-all: {stage.name}: {' '.join(command[1:])}", flush=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    tail: list[str] = []
    with open(log_path, "w") as log, subprocess.Popen(
            command, cwd=project, env=child_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
            tail = (tail + [line])[-LOG_TAIL_LINES:]
        returncode = process.wait()
    seconds = time.perf_counter() - start
    report = None
    if stage.report and returncode == 0 and (project / stage.report).is_file():
        report = json.loads((project / stage.report).read_text())
    return stage_result(stage, returncode=returncode, seconds=seconds, report=report,
                        log_tail="".join(tail), load_before=load_before,
                        load_after=os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated stages: {', '.join(s.name for s in STAGES)}")
    parser.add_argument("--project", type=Path, default=ROOT, help="the project folder")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"where the summary goes (default: <project>/{REPORTING})")
    parser.add_argument("--stop-on-failure", action="store_true",
                        help="stop at the first failed stage (default: run the rest)")
    args = parser.parse_args(argv)
    stages = select_stages(args.only)
    project = args.project.resolve()
    out_dir = args.out_dir or project / REPORTING
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows: list[dict[str, object]] = []
    interrupted = False
    try:
        for stage in stages:
            row = run_stage(stage, project=project, env=args.env,
                            log_dir=out_dir / "run_all_logs")
            rows.append(row)
            if row["status"] != "ok" and args.stop_on_failure:
                break
    except KeyboardInterrupt:
        print("\nrun-all: interrupted", flush=True)
        interrupted = True
    left = stages[len(rows):]
    rows += [stage_result(s, returncode=None, seconds=0.0, report=None,
                          interrupted=interrupted and i == 0) for i, s in enumerate(left)]
    summary = summarise(rows, env=args.env, started=started, cpus=os.cpu_count(),
                        machine=machine_info(project))
    json_path, md_path = write_summary(summary, out_dir)
    print("\n" + markdown(summary))
    print(f"run-all: summary in {json_path} and {md_path}")
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
