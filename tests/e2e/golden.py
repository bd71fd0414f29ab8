"""Golden metrics reports of the ``conf/test`` runs: which report files each pipeline writes,
and the fingerprint of the machine that recorded them (bit-identical there, close elsewhere)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"

# pipeline name -> {report name: path inside the project after `kedro run --env=test`}
PIPELINE_REPORTS: dict[str, dict[str, str]] = {
    "__default__": {"evaluation": "data/08_reporting/evaluation_metrics.json"},
    "ctc": {"ctc": "data/08_reporting/ctc_metrics.json"},
    "afm": {"afm": "data/08_reporting/afm_metrics.json"},
    "denoising": {"denoising": "data/08_reporting/denoising_metrics.json"},
    "timeseries": {"timeseries": "data/08_reporting/timeseries_metrics.json"},
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_fingerprint() -> dict[str, str]:
    """What decides floating-point rounding: the CPU model and the torch build."""
    return {"cpu": _cpu_model(), "torch": torch.__version__,
            "threads": str(torch.get_num_threads())}
