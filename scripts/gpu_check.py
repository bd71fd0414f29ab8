"""`make gpu-check`: everything that needs a GPU, in one command, under 8 minutes, one JSON.

1. every test marked ``gpu`` (``pytest -m gpu``; with two or more GPUs this includes the fit of
   2 nccl ranks against one GPU, tests/training/test_distributed.py);
2. the data-parallel throughput benchmark on CUDA (nccl): 1 and 2 ranks with two GPUs or more,
   1 rank otherwise (benchmarks/ddp_throughput.py);
3. the single-process SimCLR training throughput (benchmarks/pretraining_throughput.py).

Each step has its own time limit (together 7 minutes); their results, seconds and exit codes go
to ``--out``. Without CUDA nothing runs: the JSON says so (``gpu_check.status: skipped``) and
the command exits 0. Exits 1 when a step fails or runs out of time.

Usage: python scripts/gpu_check.py --out benchmarks/results/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS_S = {"gpu_tests": 240, "ddp_throughput": 120, "pretraining_throughput": 60}


def _run(name: str, command: list[str]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=LIMITS_S[name])
        code, tail = result.returncode, (result.stdout + result.stderr)[-2000:]
    except subprocess.TimeoutExpired as expired:
        code, tail = 124, f"timed out after {LIMITS_S[name]} s: {str(expired.stdout)[-1500:]}"
    return {"exit_code": code, "seconds": round(time.perf_counter() - start, 1),
            "log_tail": tail if code else ""}


def _junit_counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    return {"tests": total, "passed": total - failed - skipped, "failed": failed,
            "skipped": skipped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu_check.json")
    args = parser.parse_args()
    import torch

    figures: dict[str, object] = {"gpu_check.torch": torch.__version__}
    if not torch.cuda.is_available():
        figures.update({"gpu_check.status": "skipped",
                        "gpu_check.reason": "no CUDA device (torch.cuda.is_available() is "
                                            "False): nothing to check on this machine"})
        print("gpu-check skipped: no CUDA device on this machine")
    else:
        gpus = torch.cuda.device_count()
        figures.update({"gpu_check.gpus": gpus, "gpu_check.gpu": torch.cuda.get_device_name()})
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            junit, ddp, single = (Path(folder) / name for name in
                                  ("gpu_tests.xml", "ddp.json", "pretraining.json"))
            steps = {
                "gpu_tests": [sys.executable, "-m", "pytest", "-q", "-m", "gpu",
                              "-p", "no:cacheprovider", f"--junitxml={junit}"],
                "ddp_throughput": [sys.executable, "benchmarks/ddp_throughput.py", "--device",
                                   "cuda", "--ranks", *(["1", "2"] if gpus >= 2 else ["1"]),
                                   "--out", str(ddp)],
                "pretraining_throughput": [sys.executable, "benchmarks/pretraining_throughput.py",
                                           "--device", "cuda", "--out", str(single)],
            }
            for name, command in steps.items():
                figures[f"gpu_check.{name}"] = _run(name, command)
            figures["gpu_check.gpu_tests.counts"] = _junit_counts(junit)
            for path in (ddp, single):
                if path.exists():
                    figures.update(json.loads(path.read_text()))
        failed = [name for name in steps if figures[f"gpu_check.{name}"]["exit_code"] != 0]
        figures["gpu_check.status"] = "failed: " + ", ".join(failed) if failed else "passed"
        figures["gpu_check.seconds"] = round(time.perf_counter() - start, 1)
        figures["gpu_check.two_rank_nccl_run"] = gpus >= 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 1 if str(figures["gpu_check.status"]).startswith("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
