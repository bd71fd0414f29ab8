"""AFM files through afmformats: simulated curves written as HDF5 and read back, bad files,
the on_bad_file policy and the distance grid."""

import h5py
import numpy as np
import pytest

from contrastive_signals.data.afm_curves import (
    UNLABELLED,
    AfmFileError,
    IngestionParams,
    collect_curves,
    curves_dataset,
    curves_to_grid,
    find_afm_files,
    label_of_curve_id,
    read_afm_file,
    write_afm_hdf5,
)
from contrastive_signals.data.afm_simulator import AFM_CLASSES, AfmSimulationConfig, simulate_curves


@pytest.fixture(scope="module")
def curves():
    return simulate_curves(AfmSimulationConfig(n_curves=6, retract_points=128, approach_points=8,
                                               seed=1))


@pytest.fixture
def written(tmp_path, curves):
    path = tmp_path / "sim.h5"
    write_afm_hdf5(curves, path, sampling_rate=1000.0)
    return path


def test_written_file_reads_back_through_afmformats(written, curves):
    import afmformats

    assert len(afmformats.load_data(written)) == len(curves)   # afmformats' own reader
    read = read_afm_file(written)
    assert [c["enum"] for c in read] == list(range(6))
    for back, original in zip(read, curves, strict=True):
        assert back["label"] == original["label"]
        assert back["curve_id"] == f"{original['curve_id']}:{AFM_CLASSES[original['label']]}"
        np.testing.assert_allclose(back["force"], original["force"])
        np.testing.assert_allclose(back["distance"],
                                   original["separation"] - original["separation"][0], atol=1e-15)
    assert not list(written.parent.glob(".tmp-*"))             # no temporary file left


def test_tab_export_also_reads_back(tmp_path, written):
    import afmformats

    fd = afmformats.load_data(written)[0]
    fd.export_data(tmp_path / "one.tab", fmt="tab")
    (back,) = read_afm_file(tmp_path / "one.tab")
    np.testing.assert_allclose(back["force"], fd.retr["force"], rtol=1e-7)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(AfmFileError, match="broken.h5: afmformats cannot read it"):
        read_afm_file(bad)


def _rewrite(path, column, fn):
    with h5py.File(path, "a") as h5:
        data = fn(h5["2"][column][:])
        del h5["2"][column]
        h5["2"].create_dataset(column, data=data)


def test_curve_without_retract_segment_is_named(written):
    _rewrite(written, "segment", np.zeros_like)
    with pytest.raises(AfmFileError, match=r"sim.h5: curve 2: no retract segment"):
        read_afm_file(written)


def test_non_finite_values_are_named(written):
    def poison(force):
        force[-5] = np.nan
        return force
    _rewrite(written, "force", poison)
    with pytest.raises(AfmFileError, match=r"sim.h5: curve 2: 1 non-finite value"):
        read_afm_file(written)


def test_labels_come_from_the_curve_id():
    assert label_of_curve_id("sim-00001:multiple_ruptures") == 2
    assert label_of_curve_id("map-12") == UNLABELLED
    assert label_of_curve_id("x:unknown") == UNLABELLED


def test_policy_raise_names_every_bad_file_and_report_keeps_the_rest(curves):
    good = {"file": "good.h5", "curves": [{"x": 1}, {"x": 2}]}
    outcomes = [good, {"file": "a.h5", "error": "boom"}, {"file": "b.jpk-force", "error": "bad"}]
    with pytest.raises(AfmFileError, match=r"2 bad AFM file\(s\)") as info:
        collect_curves(outcomes)
    assert "a.h5: boom" in str(info.value) and "b.jpk-force: bad" in str(info.value)
    loaded, report = collect_curves(outcomes, on_bad_file="report")
    assert len(loaded) == 2 and report["curves"] == 2 and report["files"] == 3
    assert report["bad_files"] == [{"file": "a.h5", "problem": "boom"},
                                   {"file": "b.jpk-force", "problem": "bad"}]
    with pytest.raises(ValueError, match="on_bad_file"):
        collect_curves(outcomes, on_bad_file="skip")
    with pytest.raises(AfmFileError, match="no file"):
        collect_curves([])


def test_grid_interpolates_each_curve_over_its_own_range():
    curve = {"distance": np.array([0.0, 2.0, 1.0, 4.0]), "force": np.array([0.0, 2.0, 1.0, 4.0])}
    force, spacing = curves_to_grid([curve], points=5)
    np.testing.assert_allclose(force[0, 0], [0, 1, 2, 3, 4])
    assert spacing[0] == 1.0 and force.dtype == np.float32


def test_find_files_lists_supported_suffixes_only(tmp_path, written):
    (tmp_path / "notes.md").write_text("x")   # .txt would count: afmformats reads some
    (tmp_path / ".tmp-x.h5").write_text("x")
    assert find_afm_files(tmp_path) == [written]


def test_curves_dataset_grids_every_good_curve_and_counts_labels():
    curves = [{"distance": np.linspace(0, 1, 20), "force": np.ones(20), "label": label,
               "file": "f.h5", "curve_id": f"c{i}"} for i, label in enumerate([0, -1, 2])]
    data, report = curves_dataset([{"file": "f.h5", "curves": curves}],
                                  IngestionParams(grid_points=16))
    assert data["force"].shape == (3, 1, 16) and data["labels"].tolist() == [0, -1, 2]
    assert data["curve_ids"] == ["c0", "c1", "c2"] and report["labelled_curves"] == 2
    with pytest.raises(ValueError, match="grid_points"):
        IngestionParams(grid_points=4)
