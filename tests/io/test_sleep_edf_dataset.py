"""The Sleep-EDF folder datasets and files they will not use: real EDF+ files (MNE / edfio
export) under names the reader cannot pair are named in a warning, and synthetic nights are
never generated in their place."""

import logging

import pytest
from kedro.io.core import DatasetError

from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
from contrastive_signals.io.sleep_edf_dataset import (
    MARKER,
    SleepEdfDataset,
    SyntheticSleepEdfDataset,
    write_hypnogram_edf,
    write_psg_edf,
)

NIGHTS = SyntheticSleepConfig(n_subjects=2, sleep_hours=0.25, wake_before_minutes=10.0,
                              wake_after_minutes=10.0, seed=3)
SLEEP_EDF_LOGGER = "contrastive_signals.data.sleep_edf"


@pytest.fixture(scope="module")
def nights() -> dict:
    """``{"psg": [Raw, Raw], "hypnogram": [Annotations, Annotations]}`` of two subjects."""
    files = synthetic_sleep_edf(NIGHTS)
    return {"psg": [files[n] for n in sorted(files) if n.endswith("-PSG.edf")],
            "hypnogram": [files[n] for n in sorted(files) if n.endswith("-Hypnogram.edf")]}


def write_night(nights, subject: int, psg_path, hypnogram_path) -> None:
    """Subject ``subject``'s night as real EDF+ files under the given paths."""
    psg_path.parent.mkdir(parents=True, exist_ok=True)
    write_psg_edf(nights["psg"][subject], psg_path)
    write_hypnogram_edf(nights["hypnogram"][subject], hypnogram_path)


def test_edf_files_that_are_not_used_are_named_in_a_warning(tmp_path, nights, caplog):
    write_night(nights, 0, tmp_path / "SC4001E0-PSG.edf", tmp_path / "SC4001EC-Hypnogram.edf")
    # The second night under names the reader does not pair: another scheme, upper-case
    # extension, and the 2002 release's .rec/.hyp in a subfolder.
    write_night(nights, 1, tmp_path / "SC4011E0-PSG.EDF", tmp_path / "night2_hypnogram.edf")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "sc4002e0.rec").write_bytes((tmp_path / "SC4001E0-PSG.edf").read_bytes())
    with caplog.at_level(logging.WARNING, logger=SLEEP_EDF_LOGGER):
        recordings = SleepEdfDataset(folder=str(tmp_path)).load()
    assert [r["name"] for r in recordings] == ["SC4001"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0]
    assert "3 EDF file(s) that are not used" in message and "SC4ssNE0-PSG.edf" in message
    for file in ("SC4011E0-PSG.EDF", "night2_hypnogram.edf", "old/sc4002e0.rec"):
        assert f"  - {file}: " in message, file
    assert "SC4001E0-PSG.edf" not in message.split("\n", 1)[1]


def test_no_warning_for_a_folder_the_reader_uses_whole(tmp_path, nights, caplog):
    write_night(nights, 0, tmp_path / "SC4001E0-PSG.edf", tmp_path / "SC4001EC-Hypnogram.edf")
    (tmp_path / "notes.txt").write_text("not an EDF file")
    with caplog.at_level(logging.WARNING, logger=SLEEP_EDF_LOGGER):
        SleepEdfDataset(folder=str(tmp_path)).load()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_no_synthetic_nights_beside_real_files_it_cannot_pair(tmp_path, nights):
    write_night(nights, 0, tmp_path / "patient01.edf", tmp_path / "patient01_hypnogram.edf")
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "sc4012e0.hyp").write_bytes(b"0 header")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    writer = SyntheticSleepEdfDataset(folder=str(tmp_path))
    with pytest.raises(DatasetError) as error:
        writer.save(synthetic_sleep_edf(NIGHTS))
    message = str(error.value)
    assert "3 EDF file(s) that the Sleep-EDF reader cannot pair" in message
    for file in ("patient01.edf", "patient01_hypnogram.edf", "scans/sc4012e0.hyp"):
        assert f"  - {file}: " in message, file
    assert "It pairs SC4ssNE0-PSG.edf with its SC4ssNEx-Hypnogram.edf" in message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_later_unusable_file_stops_the_synthetic_set_from_being_rewritten(tmp_path, nights):
    files = synthetic_sleep_edf(NIGHTS)
    writer = SyntheticSleepEdfDataset(folder=str(tmp_path))
    writer.save(files)                                 # empty folder: generated as documented
    assert writer.load() == sorted(files) and (tmp_path / MARKER).is_file()
    write_psg_edf(nights["psg"][1], tmp_path / "my-night.edf")
    with pytest.raises(DatasetError, match=r"  - my-night.edf: not named \*-PSG.edf"):
        writer.save(files)
