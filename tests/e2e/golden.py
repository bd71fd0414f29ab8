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
    """What decides floating-point rounding: the CPU model, the vector instructions torch's
    kernels use (two "AMD EPYC" machines, one AVX2-only and one with AVX-512, rounded the
    digits and denoising reports differently), and the torch build."""
    return {"cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "threads": str(torch.get_num_threads())}


def assert_matches_golden(project: Path, pipeline: str) -> None:
    """The reports of ``project`` (after ``kedro run --pipeline=<pipeline> --env=test``) equal
    the golden ones: every figure (but wall-clock seconds) bit for bit on the machine that
    recorded them; elsewhere the same figure names, finite, since CPU rounding differs across
    processors."""
    import json
    import math
    import warnings

    golden = json.loads((GOLDEN_DIR / f"{pipeline}.json").read_text())
    same_machine = golden["machine"] == machine_fingerprint()
    for name, path in PIPELINE_REPORTS[pipeline].items():
        report = json.loads((project / path).read_text())
        expected = golden["reports"][name]
        assert sorted(report) == sorted(expected), f"{name}: figure names changed"
        assert all(math.isfinite(v) for v in report.values()), f"{name}: non-finite figure"
        if same_machine:
            # wall-clock figures (``*_seconds``) are measurements, not results
            changed = {k: (expected[k], report[k]) for k in expected
                       if report[k] != expected[k] and not k.endswith("seconds")}
            assert not changed, f"{name}: figures changed (golden, now): {changed}"
        else:
            warnings.warn(f"golden {pipeline}.json was recorded on {golden['machine']}; this "
                          f"machine is {machine_fingerprint()}: only names and finiteness checked",
                          stacklevel=2)
