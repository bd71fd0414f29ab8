"""Kedro datasets of the AFM folder: simulated files written and listed, real files kept,
every file read back as one outcome."""

import numpy as np
import pytest
from kedro.io.core import DatasetError

from contrastive_signals.data.afm_simulator import AfmSimulationConfig, simulate_curves
from contrastive_signals.io.afm_dataset import AfmCurveFolderDataset, SimulatedAfmCurvesDataset


@pytest.fixture(scope="module")
def simulated():
    curves = simulate_curves(AfmSimulationConfig(n_curves=5, retract_points=64, approach_points=4))
    return {"curves": curves, "sampling_rate": 1000.0}


def test_save_writes_chunks_and_replaces_only_its_own_files(tmp_path, simulated):
    (tmp_path / "real.tab").write_text("kept")
    dataset = SimulatedAfmCurvesDataset(folder=str(tmp_path), curves_per_file=2)
    dataset.save(simulated)
    assert dataset.load() == ["simulated-000.h5", "simulated-001.h5", "simulated-002.h5"]
    dataset = SimulatedAfmCurvesDataset(folder=str(tmp_path), curves_per_file=5)
    dataset.save(simulated)
    assert dataset.load() == ["simulated-000.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "real.tab", "simulated-000.h5", "simulated_files.json"]


def test_folder_dataset_reads_every_file_and_reports_bad_ones(tmp_path, simulated):
    SimulatedAfmCurvesDataset(folder=str(tmp_path), curves_per_file=3).save(simulated)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.h5").write_bytes(b"garbage")
    outcomes = AfmCurveFolderDataset(folder=str(tmp_path)).load()
    assert [o["file"] for o in outcomes] == ["simulated-000.h5", "simulated-001.h5",
                                             "sub/broken.h5"]
    assert [len(o["curves"]) for o in outcomes[:2]] == [3, 2]
    assert "afmformats cannot read it" in outcomes[2]["error"]
    labels = [c["label"] for o in outcomes[:2] for c in o["curves"]]
    assert labels == [int(c["label"]) for c in simulated["curves"]]
    np.testing.assert_allclose(outcomes[0]["curves"][0]["force"], simulated["curves"][0]["force"])


def test_folder_dataset_is_read_only_and_needs_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="read-only"):
        AfmCurveFolderDataset(folder=str(tmp_path)).save([])
    with pytest.raises(DatasetError, match="No AFM folder"):
        AfmCurveFolderDataset(folder=str(tmp_path / "missing")).load()
    with pytest.raises(DatasetError, match="run the simulator"):
        SimulatedAfmCurvesDataset(folder=str(tmp_path)).load()


def test_every_bad_file_of_the_folder_is_named_in_one_error(tmp_path, simulated):
    from contrastive_signals.data.afm_curves import AfmFileError, collect_curves

    SimulatedAfmCurvesDataset(folder=str(tmp_path), curves_per_file=3).save(simulated)
    good = tmp_path / "simulated-000.h5"
    (tmp_path / "cut.h5").write_bytes(good.read_bytes()[:2000])    # truncated HDF5
    (tmp_path / "junk.jpk-force").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "empty.tab").write_text("")
    outcomes = AfmCurveFolderDataset(folder=str(tmp_path)).load()
    with pytest.raises(AfmFileError) as error:
        collect_curves(outcomes, on_bad_file="raise")
    assert [file for file, _ in error.value.problems] == ["cut.h5", "empty.tab", "junk.jpk-force"]
    assert str(error.value).startswith("3 bad AFM file(s):\n  - cut.h5: afmformats cannot read")
