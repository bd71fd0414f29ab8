"""`make gpu-check` (scripts/gpu_check.py) on a machine without CUDA: it says so and exits 0."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: gpu-check runs")
def test_gpu_check_skips_cleanly_without_cuda(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run([sys.executable, str(ROOT / "scripts/gpu_check.py"), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gpu-check skipped: no CUDA device" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["gpu_check.status"] == "skipped" and "no CUDA" in figures["gpu_check.reason"]
