"""Command line of the sweeps (docs/sweeps.md).

    python -m contrastive_signals.sweep run <name> [--env test] [--no-report] [--processes N]
    python -m contrastive_signals.sweep check <name> [--env test]
    python -m contrastive_signals.sweep best <name> [--env test]   # rerun the best trial alone
    python -m contrastive_signals.sweep report <name> [--env test] # (re)run the final report

Run in the project folder (or pass ``--project``). Several processes running the same ``run``
command join the same study.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from contrastive_signals.config import ParameterError


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m contrastive_signals.sweep",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "check", "best", "report"))
    parser.add_argument("name", help="a sweep of conf/*/parameters_sweep.yml")
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--no-report", action="store_true",
                        help="skip the final test report (best vs default on the seeds)")
    parser.add_argument("--n-trials", type=_at_least_one, default=None, help="override n_trials")
    parser.add_argument("--processes", type=_at_least_one, default=None,
                        help="processes on this machine, this one included (default: the "
                             "sweep's processes); each gets cores // N threads")
    # a helper started by --processes: takes trials, leaves the parent run to its starter
    parser.add_argument("--take-only", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from contrastive_signals.sweep import runner

    project = runner.Project(args.project.resolve(), args.env)
    try:
        if args.command == "check":
            project.bootstrap()
            spec = runner.load_spec(project, args.name)
            print(f"sweep.{args.name}: OK ({len(spec.parameters)} parameters, "
                  f"{spec.n_trials} trials)")
            return 0
        if args.command in ("best", "report"):
            result = (runner.rerun_best(project, args.name) if args.command == "best" else
                      runner.report_again(project, args.name, processes=args.processes))
            print(json.dumps(result, indent=2))
            return 0
        summary = runner.run_sweep(project, args.name, report=not args.no_report,
                                   n_trials=args.n_trials, processes=args.processes,
                                   take_only=args.take_only)
    except ParameterError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(summary), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
