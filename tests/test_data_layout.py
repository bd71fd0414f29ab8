"""Kedro's data layout in the repository: data/01_raw ... data/11_seed_runs present with a
`.gitkeep` and a one-line README.md each, every data path the configuration names inside one
of them, and git ignoring the data itself but not the READMEs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
          "06_models", "07_model_output", "08_reporting", "09_checkpoints", "10_sweeps", "11_seed_runs")


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_folder_has_gitkeep_and_a_one_line_readme(layer):
    folder = ROOT / "data" / layer
    assert (folder / ".gitkeep").is_file()
    lines = (folder / "README.md").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"`data/{layer}/`: ") and len(lines[0]) > 40


def test_every_configured_data_path_is_in_a_layer_folder():
    paths = {match for path in sorted((ROOT / "conf").rglob("*.yml"))
             for match in re.findall(r"\bdata/[^\s,}'\"]+", path.read_text())}
    assert "data/09_checkpoints" in paths and "data/08_reporting/evaluation_metrics.json" in paths
    outside = sorted(p for p in paths if p.split("/")[1] not in LAYERS)
    assert not outside, f"data paths outside the layer folders {LAYERS}: {outside}"


def _git_ignores(path: str) -> bool:
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="not a git checkout")
def test_git_tracks_the_layout_and_ignores_the_data():
    kept = ["data/README.md", "data/01_raw/README.md", "data/01_raw/.gitkeep",
            "data/09_checkpoints/README.md", "data/08_reporting/.gitkeep"]
    ignored = ["data/08_reporting/evaluation_metrics.json", "data/08_reporting/plots/x.png",
               "data/06_models/simclr_encoder.pt/2026-01-01T00.00.00.000Z/simclr_encoder.pt",
               "data/01_raw/sleep_edf/SC4001E0-PSG.edf", "data/01_raw/ucr/GunPoint/README.md",
               "data/09_checkpoints/node/abc/fit0.pt", "data/08_reporting/run_all_summary.md",
               "data/notes.txt"]
    assert [p for p in kept if _git_ignores(p)] == []
    assert [p for p in ignored if not _git_ignores(p)] == []
