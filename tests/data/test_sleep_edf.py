"""Sleep-EDF: the synthetic generator writes real EDF+ that MNE reads back; the reader maps,
trims, epochs and splits; every kind of bad input is reported, all bad files at once."""

import re
import shutil
from pathlib import Path

import mne
import numpy as np
import pytest
from kedro.io.core import DatasetError

from contrastive_signals.data.sleep_edf import (
    DROPPED,
    STAGE_OF_ANNOTATION,
    STAGES,
    SleepEdfError,
    epoch_labels,
    epoch_signals,
    parse_recording_name,
    preprocess_signals,
    read_edf_header,
    read_sleep_edf_folder,
    recording_epochs,
    sleep_period_window,
    subject_split,
)
from contrastive_signals.data.sleep_synthetic import (
    CHANNELS,
    SyntheticSleepConfig,
    hypnogram_runs,
    synthetic_hypnogram,
    synthetic_night,
    synthetic_sleep_edf,
)
from contrastive_signals.io.sleep_edf_dataset import (
    MARKER,
    SleepEdfDataset,
    SyntheticSleepEdfDataset,
    write_hypnogram_edf,
    write_psg_edf,
)

TINY = SyntheticSleepConfig(n_subjects=3, sleep_hours=0.75, wake_before_minutes=40.0,
                            wake_after_minutes=35.0, difficulty=0.5, seed=0)
# Smallest nights for the bad-input cases: about 35 minutes each.
MINI = SyntheticSleepConfig(n_subjects=6, sleep_hours=0.25, wake_before_minutes=10.0,
                            wake_after_minutes=10.0, seed=1)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sleep_edf")
    SyntheticSleepEdfDataset(folder=str(folder)).save(synthetic_sleep_edf(TINY))
    return folder


@pytest.fixture(scope="module")
def tiny_nights() -> dict:
    """What the generator drew for each subject of TINY (hypnogram texts and volts)."""
    return {subject: synthetic_night(subject, 1, TINY) for subject in range(TINY.n_subjects)}


@pytest.fixture(scope="module")
def mini_files() -> dict:
    return synthetic_sleep_edf(MINI)


def _write(files: dict, folder: Path) -> None:
    for name, value in files.items():
        if name.endswith("-PSG.edf"):
            write_psg_edf(value, folder / name)
        else:
            write_hypnogram_edf(value, folder / name)


def _hypnogram_name(files: dict, subject: int) -> str:
    return next(n for n in files if n.startswith(f"SC4{subject:02d}1") and n.endswith("-Hypnogram.edf"))


# ---------------------------------------------------------------- generator


def test_generator_writes_sleep_edf_layout_read_back_by_mne(tiny_folder, tiny_nights):
    names = sorted(p.name for p in tiny_folder.iterdir())
    psgs = [n for n in names if n.endswith("-PSG.edf")]
    hypnograms = [n for n in names if n.endswith("-Hypnogram.edf")]
    assert psgs == ["SC4001E0-PSG.edf", "SC4011E0-PSG.edf", "SC4021E0-PSG.edf"]
    assert all(re.fullmatch(r"SC40[0-2]1E[A-Z]-Hypnogram\.edf", n) for n in hypnograms)
    assert [n[:6] for n in hypnograms] == [n[:6] for n in psgs]
    assert MARKER in names

    raw = mne.io.read_raw_edf(tiny_folder / psgs[0], preload=True, verbose="error")
    assert raw.ch_names == list(CHANNELS)
    assert raw.info["sfreq"] == 100.0
    generated = tiny_nights[0]
    assert raw.n_times == generated["signals"].shape[1]
    # EDF stores 16-bit samples: equal to the generated volts up to the quantisation step.
    step = np.ptp(generated["signals"], axis=1, keepdims=True) / 65535
    assert np.all(np.abs(raw.get_data() - generated["signals"]) <= step)

    annotations = mne.read_annotations(tiny_folder / hypnograms[0])
    onset, duration, description = hypnogram_runs(generated["stages"])
    assert list(annotations.description) == description
    np.testing.assert_allclose(annotations.onset, onset)
    np.testing.assert_allclose(annotations.duration, duration)
    assert set(description) <= set(STAGE_OF_ANNOTATION) | {"Sleep stage ?", "Movement time"}
    assert description[0] == "Sleep stage W" and description[-1] == "Sleep stage ?"


def test_generator_is_seeded_and_nights_do_not_depend_on_the_set_size(tiny_nights):
    one = tiny_nights[1]
    again = synthetic_night(1, 1, SyntheticSleepConfig(**{**vars(TINY), "n_subjects": 5}))
    assert one["stages"] == again["stages"]
    np.testing.assert_array_equal(one["signals"], again["signals"])
    other = synthetic_night(1, 1, SyntheticSleepConfig(**{**vars(TINY), "seed": 7}))
    assert not np.array_equal(one["signals"], other["signals"])


def test_hypnogram_follows_sleep_cycles():
    rng = np.random.default_rng(0)
    stages = synthetic_hypnogram(sleep_epochs=8 * 120, wake_before_epochs=120,
                                 wake_after_epochs=60, cycle_epochs=180, rng=rng)
    assert len(stages) == 120 + 8 * 120 + 60 + 1
    assert set(stages[:120]) == {"Sleep stage W"} and stages[120] == "Sleep stage 1"
    sleep = stages[120:120 + 960]
    first, last = sleep[:180], sleep[-240:]
    deep = {"Sleep stage 3", "Sleep stage 4"}
    # N3 concentrates early in the night, REM late.
    assert sum(s in deep for s in first) > sum(s in deep for s in last)
    assert sum(s == "Sleep stage R" for s in last) > sum(s == "Sleep stage R" for s in first)
    assert {"Sleep stage 2", "Sleep stage 4", "Sleep stage R"} <= set(sleep)


def test_stage_content_differs_as_expected():
    """Delta power is highest in N3 and alpha (8-12 Hz) power on Pz-Oz highest in wake."""
    night = synthetic_night(0, 1, SyntheticSleepConfig(difficulty=0.0, sleep_hours=1.5))
    epochs = night["signals"][:, :len(night["stages"]) * 3000].reshape(4, -1, 3000)
    spectrum = np.abs(np.fft.rfft(epochs, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(3000, d=0.01)
    delta = spectrum[0][:, (freqs >= 0.5) & (freqs < 2)].sum(1)
    alpha = spectrum[1][:, (freqs >= 8) & (freqs < 12)].sum(1)
    stages = np.array(night["stages"])
    assert np.median(delta[stages == "Sleep stage 3"]) > 4 * np.median(delta[stages == "Sleep stage 2"])
    assert np.median(alpha[stages == "Sleep stage W"]) > 4 * np.median(alpha[stages == "Sleep stage 2"])


@pytest.mark.parametrize("bad", [{"n_subjects": 0}, {"nights_per_subject": 3}, {"difficulty": 1.5},
                                 {"sampling_rate": 50.0}])
def test_bad_generator_config_rejected(bad):
    with pytest.raises(ValueError):
        SyntheticSleepConfig(**bad)


# ---------------------------------------------------------------- mapping, trimming, epochs


@pytest.mark.parametrize(("text", "stage"), [
    ("Sleep stage W", 0), ("Sleep stage 1", 1), ("Sleep stage 2", 2), ("Sleep stage 3", 3),
    ("Sleep stage 4", 3), ("Sleep stage R", 4), ("Sleep stage ?", DROPPED), ("Movement time", DROPPED),
])
def test_stage_mapping(text, stage):
    labels = epoch_labels(np.array([0.0, 60.0]), np.array([60.0, 30.0]), ["Sleep stage W", text],
                          n_epochs=4)
    assert labels.tolist() == [0, 0, stage, DROPPED]  # the 4th epoch is not annotated
    assert STAGES[4] == "REM"


def test_labels_follow_epoch_midpoints():
    # An annotation from 45 s covers the midpoints of epochs 1 (45 s) onwards.
    labels = epoch_labels(np.array([0.0, 45.0]), np.array([45.0, 75.0]),
                          ["Sleep stage W", "Sleep stage 2"], n_epochs=4)
    assert labels.tolist() == [0, 2, 2, 2]


def test_unknown_stage_text_rejected():
    with pytest.raises(ValueError, match=r"unknown stage annotation\(s\) \['Sleep stage X'\]"):
        epoch_labels(np.array([0.0]), np.array([30.0]), ["Sleep stage X"], n_epochs=1)


def test_sleep_period_window_keeps_wake_margins():
    labels = np.array([0] * 100 + [DROPPED, 2, 2, 0, 4] + [0] * 100)
    assert sleep_period_window(labels, keep_wake_epochs=60) == (41, 165)
    assert sleep_period_window(labels, keep_wake_epochs=1000) == (0, len(labels))
    with pytest.raises(ValueError, match="no sleep epoch"):
        sleep_period_window(np.zeros(10, dtype=int), keep_wake_epochs=2)


def test_reader_trims_pairs_and_names_recordings(tiny_folder, tiny_nights):
    recordings = read_sleep_edf_folder(tiny_folder, keep_wake_minutes=10.0)
    assert [r["name"] for r in recordings] == ["SC4001", "SC4011", "SC4021"]
    assert [r["subject"] for r in recordings] == [0, 1, 2] and {r["night"] for r in recordings} == {1}
    for r in recordings:
        night = tiny_nights[r["subject"]]
        wake_before = night["stages"].index("Sleep stage 1")
        assert r["first_epoch"] == wake_before - 20          # 10 minutes of wake kept
        assert (r["labels"][:20] == 0).all() and r["labels"][20] == 1
        asleep = np.flatnonzero(r["labels"] > 0)
        assert len(r["labels"]) - 1 - asleep[-1] == 20       # and 10 minutes after
        assert r["signals"].shape == (3, len(r["labels"]) * 3000)
        assert r["signals"].dtype == np.float32
        assert r["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]


def test_recording_epochs_shapes_and_dropped_epochs(tiny_folder):
    recording = read_sleep_edf_folder(tiny_folder, channels=["EEG Fpz-Cz", "EMG submental"])[0]
    out = recording_epochs(recording, low_hz=0.3, high_hz=35.0, target_hz=100.0)
    kept = recording["labels"] >= 0
    assert out["epochs"].shape == (kept.sum(), 2, 3000) and out["epochs"].dtype == np.float32
    assert out["labels"].tolist() == recording["labels"][kept].tolist()
    assert out["epoch_index"].tolist() == np.flatnonzero(kept).tolist()
    assert abs(float(np.median(out["epochs"]))) < 0.1  # normalised per recording


def test_resampling_to_the_target_rate():
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((2, 200 * 90))  # 90 s at 200 Hz
    out = preprocess_signals(signals, sampling_rate=200.0, low_hz=0.5, high_hz=30.0, target_hz=100.0)
    assert out.shape == (2, 100 * 90)
    epochs, labels, index = epoch_signals(out, np.array([0, DROPPED, 3]), samples_per_epoch=3000)
    assert epochs.shape == (2, 2, 3000) and labels.tolist() == [0, 3] and index.tolist() == [0, 2]


# ---------------------------------------------------------------- split


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_subject_split_never_mixes_subjects(seed):
    subjects = [0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 6, 7]   # two nights for most subjects
    parts = subject_split(subjects, val_subjects=2, test_subjects=2, seed=seed)
    sets = [set(parts[p]) for p in ("train", "val", "test")]
    assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2]) and sets[1].isdisjoint(sets[2])
    assert set().union(*sets) == set(subjects)
    assert (len(sets[1]), len(sets[2])) == (2, 2)
    assert parts == subject_split(subjects, val_subjects=2, test_subjects=2, seed=seed)


def test_subject_split_needs_enough_subjects():
    with pytest.raises(ValueError, match="2 subject"):
        subject_split([0, 1, 1], val_subjects=1, test_subjects=1, seed=0)


def test_recording_names():
    assert parse_recording_name("SC4012E0-PSG.edf") == ("SC4012", 1, 2)
    assert parse_recording_name("SC4182EC-Hypnogram.edf") == ("SC4182", 18, 2)
    assert parse_recording_name("ST7011J0-PSG.edf") == ("ST7011", 101, 1)
    with pytest.raises(ValueError, match="scheme"):
        parse_recording_name("night1-PSG.edf")


# ---------------------------------------------------------------- bad input


def _one_bad(mini_files, tmp_path, subject: int, spoil) -> Path:
    """A folder with subject 0 (good) and ``subject`` spoiled by ``spoil(files, folder)``."""
    keep = {n: v for n, v in mini_files.items() if n[3:5] in ("00", f"{subject:02d}")}
    spoil(keep, tmp_path)
    _write(keep, tmp_path)
    return tmp_path


def _drop_hypnogram(files, folder):
    del files[_hypnogram_name(files, 1)]


def _unknown_stage(files, folder):
    name = _hypnogram_name(files, 2)
    old = files[name]
    files[name] = mne.Annotations(old.onset, old.duration,
                                  ["Sleep stage X" if d == "Sleep stage 2" else d for d in old.description])


def _missing_channel(files, folder):
    files["SC4031E0-PSG.edf"] = files["SC4031E0-PSG.edf"].copy().drop_channels(["EOG horizontal"])


def _truncate(files, folder):
    _write({"SC4041E0-PSG.edf": files.pop("SC4041E0-PSG.edf")}, folder)
    path = folder / "SC4041E0-PSG.edf"
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _corrupt(files, folder):
    files.pop("SC4041E0-PSG.edf")
    (folder / "SC4041E0-PSG.edf").write_bytes(b"this is not an EDF file" * 50)


def _hypnogram_too_long(files, folder):
    name = _hypnogram_name(files, 5)
    old = files[name]
    duration = old.duration.copy()
    duration[-2] += 600.0  # the final wake run ends 10 minutes after the recording
    files[name] = mne.Annotations(old.onset[:-1], duration[:-1], list(old.description[:-1]))


@pytest.mark.parametrize(("subject", "spoil", "bad_file", "message"), [
    (1, _drop_hypnogram, "SC4011E0-PSG.edf", "PSG without its hypnogram"),
    (2, _unknown_stage, "SC4021E?-Hypnogram.edf", r"unknown stage annotation\(s\) \['Sleep stage X'\]"),
    (3, _missing_channel, "SC4031E0-PSG.edf", r"missing channel\(s\) \['EOG horizontal'\]"),
    (4, _truncate, "SC4041E0-PSG.edf", "truncated EDF file"),
    (4, _corrupt, "SC4041E0-PSG.edf", "not an EDF file"),
    (5, _hypnogram_too_long, "SC4051E?-Hypnogram.edf", "hypnogram longer than its recording"),
], ids=["no_hypnogram", "unknown_stage", "missing_channel", "truncated", "corrupt", "too_long"])
def test_each_bad_input_names_the_file_and_problem(mini_files, tmp_path, subject, spoil, bad_file, message):
    folder = _one_bad(mini_files, tmp_path, subject, spoil)
    with pytest.raises(SleepEdfError) as error:
        read_sleep_edf_folder(folder)
    assert len(error.value.problems) == 1
    file, problem = error.value.problems[0]
    assert re.fullmatch(bad_file.replace(".", r"\.").replace("?", "[A-Z]"), file)
    assert re.search(message, problem)
    assert file in str(error.value) and str(folder) in str(error.value)


def test_every_bad_file_is_reported_in_one_error(mini_files, tmp_path):
    files = dict(mini_files)
    for spoil in (_drop_hypnogram, _unknown_stage, _missing_channel, _truncate, _hypnogram_too_long):
        spoil(files, tmp_path)
    (tmp_path / "SC4991EC-Hypnogram.edf").write_bytes(b"")     # and an orphan hypnogram
    _write(files, tmp_path)
    with pytest.raises(SleepEdfError) as error:
        read_sleep_edf_folder(tmp_path)
    reported = [file for file, _ in error.value.problems]
    assert len(reported) == 6 and "SC4001E0-PSG.edf" not in reported
    message = str(error.value)
    assert message.startswith("6 bad Sleep-EDF file(s)")
    for fragment in ("SC4011E0-PSG.edf: PSG without its hypnogram", "SC4021E", "Sleep stage X",
                     "SC4031E0-PSG.edf: missing channel", "SC4041E0-PSG.edf: truncated",
                     "SC4051E", "longer than its recording", "SC4991EC-Hypnogram.edf: hypnogram without its PSG"):
        assert fragment in message, fragment


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(SleepEdfError, match="no \\*-PSG.edf recordings"):
        read_sleep_edf_folder(tmp_path)
    with pytest.raises(SleepEdfError, match="does not exist"):
        read_sleep_edf_folder(tmp_path / "nope")


def test_header_check_reads_record_counts(tiny_folder, tiny_nights):
    header = read_edf_header(tiny_folder / "SC4001E0-PSG.edf")
    assert header.labels[:4] == CHANNELS
    assert header.duration_seconds == pytest.approx(len(tiny_nights[0]["stages"]) * 30.0)


# ---------------------------------------------------------------- Kedro datasets


def test_reader_dataset_wraps_errors_and_is_read_only(mini_files, tmp_path):
    folder = _one_bad(mini_files, tmp_path, 1, _drop_hypnogram)
    dataset = SleepEdfDataset(folder=str(folder))
    with pytest.raises(DatasetError, match="SC4011E0-PSG.edf: PSG without its hypnogram"):
        dataset.load()
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save([])


def test_real_files_are_never_overwritten_and_win_over_synthetic(mini_files, tmp_path):
    synthetic = {n: v for n, v in mini_files.items() if n[3:5] in ("00", "01")}
    writer = SyntheticSleepEdfDataset(folder=str(tmp_path))
    writer.save(synthetic)
    assert writer.load() == sorted(synthetic)
    # A "real" recording appears next to the synthetic ones (copied under a real name).
    real = {"SC4101E0-PSG.edf": "SC4001E0-PSG.edf", "SC4101EC-Hypnogram.edf": _hypnogram_name(synthetic, 0)}
    for new, old in real.items():
        shutil.copy(tmp_path / old, tmp_path / new)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    writer.save({n: v for n, v in mini_files.items() if n[3:5] == "02"})
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # nothing written
    assert writer.load() == sorted(real)
    recordings = SleepEdfDataset(folder=str(tmp_path)).load()
    assert [r["name"] for r in recordings] == ["SC4101"]


def test_new_synthetic_set_replaces_the_old_one(mini_files, tmp_path):
    writer = SyntheticSleepEdfDataset(folder=str(tmp_path))
    writer.save({n: v for n, v in mini_files.items() if n[3:5] in ("00", "01", "02")})
    smaller = {n: v for n, v in mini_files.items() if n[3:5] == "00"}
    writer.save(smaller)
    assert writer.load() == sorted(smaller)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*smaller, MARKER])


def test_writer_rejects_wrong_objects(tmp_path):
    with pytest.raises(DatasetError, match="expected an mne Raw"):
        SyntheticSleepEdfDataset(folder=str(tmp_path)).save({"SC4001E0-PSG.edf": np.zeros(3)})


@pytest.mark.parametrize(("flag", "expected"), [(False, False), ("false", False), ("True", True)])
def test_download_flag_accepts_cli_text(tmp_path, flag, expected):
    assert SleepEdfDataset(folder=str(tmp_path), download=flag)._describe()["download"] is expected
    with pytest.raises(DatasetError, match="download must be true or false"):
        SleepEdfDataset(folder=str(tmp_path), download="yes please")
