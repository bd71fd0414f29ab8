"""`kedro run --pipeline=sleep` on a user's own EDF files, from the command line: names the
reader cannot pair stop the run before any synthetic night is generated (listing the files
and the expected names); once renamed, a folder with too few subjects for the split stops it
with an error that names the split parameters."""

import subprocess

import pytest

from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
from contrastive_signals.io.sleep_edf_dataset import write_hypnogram_edf, write_psg_edf
from tests.e2e.project import KEDRO, make_project_copy, project_env

pytestmark = pytest.mark.slow

RUN = ("run", "--env=test", "--pipeline=sleep", "--to-nodes=sleep.split_subjects")


def failed_kedro(project, *args: str) -> str:
    """The output of a `kedro` command that must fail, with every run of white space made one
    space (the console wraps long lines)."""
    result = subprocess.run([str(KEDRO), *args], cwd=project, env=project_env(project),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0, result.stdout[-3000:]
    return " ".join((result.stdout + result.stderr).split())


def test_own_edf_files_are_never_replaced_by_generated_nights(tmp_path):
    project = make_project_copy(tmp_path)
    folder = project / "data/01_raw/sleep_edf"
    folder.mkdir(parents=True)
    files = synthetic_sleep_edf(SyntheticSleepConfig(n_subjects=1, sleep_hours=0.25, seed=0))
    psg, hypnogram = sorted(files, key=lambda name: not name.endswith("-PSG.edf"))
    write_psg_edf(files[psg], folder / "subject1-night1.edf")
    write_hypnogram_edf(files[hypnogram], folder / "subject1-night1-scoring.edf")

    output = failed_kedro(project, *RUN)
    assert "2 EDF file(s) that the Sleep-EDF reader cannot pair" in output
    assert "- subject1-night1.edf: not named *-PSG.edf or *-Hypnogram.edf" in output
    assert "- subject1-night1-scoring.edf: not named" in output
    assert "It pairs SC4ssNE0-PSG.edf with its SC4ssNEx-Hypnogram.edf" in output
    assert sorted(p.name for p in folder.iterdir()) == ["subject1-night1-scoring.edf",
                                                        "subject1-night1.edf"]
    assert not (project / "data/03_primary/sleep_epochs.pt").exists()

    (folder / "subject1-night1.edf").rename(folder / "SC4071E0-PSG.edf")
    (folder / "subject1-night1-scoring.edf").rename(folder / "SC4071EC-Hypnogram.edf")
    output = failed_kedro(project, *RUN)
    assert ("sleep.ingestion.split.test_subjects=1 and sleep.ingestion.split.val_subjects=1 need "
            "3 subjects (with 1 for training), but the recordings hold 1 subject(s) [7]") in output
    assert sorted(p.name for p in folder.iterdir()) == ["SC4071E0-PSG.edf",
                                                        "SC4071EC-Hypnogram.edf"]
