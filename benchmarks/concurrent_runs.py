"""Two different `kedro run`s at once in one project, repeated: how many figures differ from
the same runs alone (the longer run starts first and saves its model after the shorter one;
see tests/e2e/concurrent.py). Writes a flat JSON::

    python benchmarks/concurrent_runs.py --repetitions 5 --out benchmarks/results/concurrent_runs.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_common import machine_info, write_figures

from tests.e2e.concurrent import concurrent_figures, solo_figures, wrong_figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        solo = solo_figures(workdir)
        wrong, seconds = [], []
        for repetition in range(args.repetitions):
            start = time.perf_counter()
            wrong += wrong_figures(solo, concurrent_figures(workdir / f"pair{repetition}"))
            seconds.append(round(time.perf_counter() - start, 1))
    write_figures({"repetitions": args.repetitions, "wrong_figures": len(wrong),
                   "wrong": wrong, "pair_wall_s": seconds,
                   "solo.A": solo["A"][0], "solo.B": solo["B"][0], **machine_info()}, args.out)


if __name__ == "__main__":
    main()
