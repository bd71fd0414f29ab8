"""Jobs for spawned processes go by file (training/spawned_jobs.py): a process that dies while
it starts cannot block its caller, who names the missing main guard instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from contrastive_signals.training.spawned_jobs import read_job, write_job

ROOT = Path(__file__).resolve().parents[2]

# Scripts without `if __name__ == "__main__":`, each handing tens of megabytes to spawned
# processes; before the jobs went by file, both blocked their caller for ever.
SCRIPTS = {
    "data-parallel ranks": """
        import torch
        from contrastive_signals.training.distributed import run_on_ranks
        from contrastive_signals.training.fit import FitConfig
        images = torch.zeros(10_000_000)  # 40 MB, far more than a pipe holds
        run_on_ranks(torch.sum, images, config=FitConfig(
            epochs=1, learning_rate=1e-3, strategy="ddp", devices=2, device="cpu"))
    """,
    "label-efficiency workers": """
        import numpy as np
        from torch import nn
        from contrastive_signals.methods.label_efficiency import (
            LabelEfficiencyParams, label_efficiency_runs)
        nights = [{"name": f"n{i}", "signal": np.zeros(1_000_000)} for i in range(10)]  # 80 MB
        label_efficiency_runs(nights, [], [], stages=["W"], pretrained=nn.Linear(2, 2),
                              params=LabelEfficiencyParams(workers=2, seeds=(0,)), path="le")
    """,
}
EXPECTED = {
    "data-parallel ranks": "RuntimeError: data-parallel fit failed: rank ",
    "label-efficiency workers": "RuntimeError: le.workers: a worker process ended abruptly",
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_script_without_a_main_guard_fails_with_the_reason_instead_of_hanging(tmp_path, name):
    script = tmp_path / "train_without_guard.py"
    script.write_text(textwrap.dedent(SCRIPTS[name]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, timeout=150,
                          capture_output=True, text=True)
    assert done.returncode != 0
    last = next(line for line in reversed(done.stderr.splitlines())
                if line.startswith("RuntimeError"))
    assert last.startswith(EXPECTED[name])
    assert 'needs its work under `if __name__ == "__main__":`' in last


def test_a_job_round_trips_through_its_private_folder_which_is_removed_after():
    job = {"recordings": [np.arange(5.0)], "scale": lambda x: 2 * x}  # cloudpickle: a lambda
    with tempfile.TemporaryDirectory(prefix="test-job-") as name:  # as the callers hold it
        folder = Path(name)
        path = write_job(folder, job)
        assert Path(path).parent == folder and oct(folder.stat().st_mode & 0o777) == "0o700"
        back = read_job(path)
        np.testing.assert_array_equal(back["recordings"][0], job["recordings"][0])
        assert back["scale"](3) == 6
    assert not folder.exists()
