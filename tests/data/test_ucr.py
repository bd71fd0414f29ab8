"""UCR/UEA reader: aeon's bundled sets offline, user files in the archive's layout (univariate,
multivariate, variable length, .arff), and clear errors naming the file."""

import shutil
import socket

import numpy as np
import pytest

from contrastive_signals.data.ucr import (
    UcrFilesError,
    UcrFormatError,
    available_datasets,
    bundled_ucr_root,
    check_ts_header,
    load_named,
    load_ucr_dataset,
    pad_series,
    read_ucr_file,
    should_standardise,
)
from contrastive_signals.io.ucr_dataset import UcrArchiveDataset

HEADER = ("# a comment\n@problemName {name}\n@timeStamps false\n@missing false\n"
          "@univariate {uni}\n@equalLength {equal}\n@classLabel true a b\n@data\n")


def write_ts(folder, name, split, rows, *, uni="false", equal="false", header=None):
    (folder / name).mkdir(parents=True, exist_ok=True)
    path = folder / name / f"{name}_{split}.ts"
    text = header if header is not None else HEADER.format(name=name, uni=uni, equal=equal)
    path.write_text(text + "\n".join(rows) + "\n")
    return path


MULTI_TRAIN = ["1,2,3:4,5,6:a", "1,2:3,4:b", "2,3,4,5:1,1,1,1:a", "0,1:1,0:b"]
MULTI_TEST = ["1,2,3,4,5:1,1,1,1,1:a", "1,2:3,4:b"]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the reader tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_bundled_sets_are_read_offline(no_network):
    files = available_datasets([bundled_ucr_root()])
    assert {"GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels"} <= set(files)
    gun = load_ucr_dataset("GunPoint", files)
    assert gun["x_train"].shape == (50, 150, 1) and gun["x_test"].shape == (150, 150, 1)
    assert gun["mask_train"].all() and gun["classes"] == ["1", "2"]
    vowels = load_ucr_dataset("JapaneseVowels", files)
    assert vowels["x_train"].shape == (270, 29, 12) and len(vowels["classes"]) == 9
    lengths = vowels["mask_train"].sum(1)
    assert lengths.min() < 29 and not vowels["x_train"][~vowels["mask_train"]].any()


def test_user_multivariate_variable_length(tmp_path, no_network):
    write_ts(tmp_path, "Toy", "TRAIN", MULTI_TRAIN)
    write_ts(tmp_path, "Toy", "TEST", MULTI_TEST)
    data = load_ucr_dataset("Toy", available_datasets([tmp_path]), standardise=False)
    # Padded to the longest series of either split (5); nothing truncated.
    assert data["x_train"].shape == (4, 5, 2) and data["x_test"].shape == (2, 5, 2)
    assert data["mask_train"].sum(1).tolist() == [3, 2, 4, 2]
    assert data["x_train"][2, :4, 0].tolist() == [2, 3, 4, 5]
    assert data["x_test"][0, :, 0].tolist() == [1, 2, 3, 4, 5]
    assert data["y_train"].tolist() == [0, 1, 0, 1] and data["classes"] == ["a", "b"]


def test_standardise_uses_training_statistics(tmp_path):
    write_ts(tmp_path, "Toy", "TRAIN", MULTI_TRAIN)
    write_ts(tmp_path, "Toy", "TEST", MULTI_TEST)
    data = load_ucr_dataset("Toy", available_datasets([tmp_path]))
    observed = data["x_train"][data["mask_train"]]
    assert np.allclose(observed.mean(0), 0, atol=1e-6)
    assert np.allclose(observed.std(0), 1, atol=1e-5)
    assert not data["x_test"][~data["mask_test"]].any()


def test_user_folder_wins_and_arff_is_read(tmp_path):
    bundled = bundled_ucr_root()
    (tmp_path / "GunPoint").mkdir()
    for split in ("TRAIN", "TEST"):
        source = bundled / "GunPoint" / "GunPoint_TRAIN.arff"
        (tmp_path / "GunPoint" / f"GunPoint_{split}.arff").write_text(source.read_text())
    files = available_datasets([tmp_path, bundled])
    assert files["GunPoint"][0].parent == tmp_path / "GunPoint"
    data = load_ucr_dataset("GunPoint", files)
    assert data["x_train"].shape == (50, 150, 1)


def test_archive_dataset_is_lazy_and_lists_names(tmp_path):
    write_ts(tmp_path, "Toy", "TRAIN", MULTI_TRAIN)
    write_ts(tmp_path, "Toy", "TEST", MULTI_TEST)
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    assert list(archive) == ["Toy"]
    assert archive["Toy"]()["x_train"].shape == (4, 5, 2)


def test_pad_never_truncates():
    with pytest.raises(ValueError, match="never truncated"):
        pad_series([np.zeros((1, 5))], length=3)


@pytest.mark.parametrize(("header", "match"), [
    ("@problemName Bad\n@classLabel true a b\n", "@data"),
    ("@problemName Bad\n@univariate maybe\n@classLabel true a b\n@data\n", "true or false"),
    ("@problemName Bad\n@colour blue\n@classLabel true a b\n@data\n", "unknown header tag"),
    ("@problemName Bad\n@classLabel true\n@data\n", "must list the class values"),
    ("@problemName Bad\nthis is not a tag\n@data\n", "expected a header tag"),
    ("@problemName Bad\n@classLabel false\n@data\n", "only classification"),
])
def test_malformed_header_names_the_file(tmp_path, header, match):
    path = write_ts(tmp_path, "Bad", "TRAIN", ["1,2,3:a"], header=header)
    with pytest.raises(UcrFormatError, match=match) as error:
        read_ucr_file(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(("rows", "match"), [
    (["1,2,3:4,5,6:a", "1,2,3:b"], "channel|dimensions"),
    (["1,2,NaN:4,5,6:a", "1,2,3:4,5,6:b"], "NaN"),
    (["1,2,?:4,5,6:a", "1,2,3:4,5,6:b"], "NaN"),
    (["1,2,3:4,5,6:c", "1,2,3:4,5,6:b"], "not in the header"),
    (["1,x,3:4,5,6:a"], "could not parse"),
])
def test_bad_data_names_the_file(tmp_path, rows, match):
    path = write_ts(tmp_path, "Bad", "TRAIN", rows)
    with pytest.raises(UcrFormatError, match=match) as error:
        read_ucr_file(path)
    assert str(path) in str(error.value)


def test_train_test_channel_mismatch_and_unseen_labels(tmp_path):
    write_ts(tmp_path, "Odd", "TRAIN", MULTI_TRAIN)
    test = write_ts(tmp_path, "Odd", "TEST", ["1,2:a"], uni="true")
    with pytest.raises(UcrFormatError, match="channels") as error:
        load_ucr_dataset("Odd", available_datasets([tmp_path]))
    assert str(test) in str(error.value)
    write_ts(tmp_path, "Few", "TRAIN", ["1,2:3,4:a", "1,2:3,4:a"])
    write_ts(tmp_path, "Few", "TEST", ["1,2:3,4:b"])
    with pytest.raises(UcrFormatError, match="never occur in training"):
        load_ucr_dataset("Few", available_datasets([tmp_path]))


def test_unknown_name_lists_known(tmp_path):
    write_ts(tmp_path, "Toy", "TRAIN", MULTI_TRAIN)
    write_ts(tmp_path, "Toy", "TEST", MULTI_TEST)
    with pytest.raises(KeyError, match=r"unknown UCR/UEA dataset 'Nope'.*Toy"):
        load_ucr_dataset("Nope", available_datasets([tmp_path]))


def test_header_tags_are_returned(tmp_path):
    path = write_ts(tmp_path, "Toy", "TRAIN", MULTI_TRAIN)
    tags = check_ts_header(path)
    assert tags["problemname"] == "Toy" and tags["classlabel"] == "true a b"


def test_auto_standardise_follows_ts2vec_loaders(tmp_path, no_network):
    # TS2Vec z-scores every multivariate (UEA) set per channel with the training statistics and
    # keeps univariate UCR sets as stored, except those the archive stores unnormalised.
    assert should_standardise("Toy", 2, "auto")
    assert not should_standardise("GunPoint", 1, "auto")
    assert should_standardise("Chinatown", 1, "auto")
    assert should_standardise("GunPoint", 1, True) and not should_standardise("Toy", 2, False)
    with pytest.raises(ValueError, match="'auto'"):
        should_standardise("Toy", 1, "yes")
    files = available_datasets([bundled_ucr_root()])
    stored = load_ucr_dataset("GunPoint", files, standardise=False)
    auto = load_ucr_dataset("GunPoint", files, standardise="auto")
    assert np.array_equal(stored["x_train"], auto["x_train"])
    write_ts(tmp_path, "Toy", "TRAIN", MULTI_TRAIN)
    write_ts(tmp_path, "Toy", "TEST", MULTI_TEST)
    multi = load_ucr_dataset("Toy", available_datasets([tmp_path]), standardise="auto")
    assert np.allclose(multi["x_train"][multi["mask_train"]].mean(0), 0, atol=1e-6)


def test_load_named_reads_the_asked_sets_and_lists_the_known_ones():
    archive = {"A": lambda standardise: {"standardise": standardise}, "B": lambda **_: {}}
    assert load_named(archive, ["A"], standardise="auto") == {"A": {"standardise": "auto"}}
    with pytest.raises(KeyError, match=r"\['Nope'\]; known datasets: \['A', 'B'\]"):
        load_named(archive, ["A", "Nope"], standardise=True)


def test_bad_train_and_test_files_are_named_in_one_error(tmp_path):
    train = write_ts(tmp_path, "Both", "TRAIN", ["1,2,3:4,5,6:a", "1,2,3:b"])
    test = write_ts(tmp_path, "Both", "TEST", ["1,2,NaN:4,5,6:a"])
    with pytest.raises(UcrFilesError) as error:
        load_ucr_dataset("Both", available_datasets([tmp_path]))
    assert [file for file, _ in error.value.problems] == [str(test), str(train)]
    message = str(error.value)
    assert message.startswith("2 bad UCR/UEA file(s):")
    assert f"  - {test}: series 1 holds NaN" in message
    assert f"  - {train}: could not parse the data: Inconsistent number of dimensions" in message


def test_load_named_tries_every_set_and_names_every_bad_file(tmp_path):
    write_ts(tmp_path, "Good", "TRAIN", MULTI_TRAIN)
    write_ts(tmp_path, "Good", "TEST", MULTI_TEST)
    bad_train = write_ts(tmp_path, "BadA", "TRAIN", ["1,x,3:4,5,6:a"])
    write_ts(tmp_path, "BadA", "TEST", MULTI_TEST)
    write_ts(tmp_path, "BadB", "TRAIN", MULTI_TRAIN)
    bad_test = write_ts(tmp_path, "BadB", "TEST", ["1,2:3,4:a"],
                        header="@problemName BadB\n@classLabel true a b\n")
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    with pytest.raises(UcrFilesError) as error:
        load_named(archive, ["BadA", "Good", "BadB"], standardise=True)
    assert sorted(file for file, _ in error.value.problems) == sorted([str(bad_train),
                                                                      str(bad_test)])
    assert "could not parse" in str(error.value) and "expected a header tag" in str(error.value)


def test_covid3month_says_regression_is_not_supported(tmp_path, no_network):
    # aeon's bundled Covid3Month (@targetLabel true, real-valued targets), as the user sees
    # it both where aeon keeps it and copied into the user folder.
    bundled = bundled_ucr_root() / "Covid3Month"
    shutil.copytree(bundled, tmp_path / "Covid3Month")
    for root in (tmp_path, bundled_ucr_root()):
        archive = UcrArchiveDataset(folder=str(root), include_bundled=False).load()
        with pytest.raises(UcrFilesError) as error:
            load_named(archive, ["Covid3Month"], standardise="auto")
        message = str(error.value)
        assert "regression datasets are not supported" in message and "@targetLabel true" in message
        for split in ("TRAIN", "TEST"):
            assert str(root / "Covid3Month" / f"Covid3Month_{split}.ts") in message
        assert "never occur in training" not in message


def test_percent_comments_of_aeons_unittest_set_are_read(no_network):
    # aeon's bundled UnitTest (a cut-down Chinatown) opens with '%' comment lines.
    archive = UcrArchiveDataset(folder=str(bundled_ucr_root()), include_bundled=False).load()
    data = load_named(archive, ["UnitTest"], standardise="auto")["UnitTest"]
    assert data["x_train"].shape == (20, 24, 1) and data["x_test"].shape == (22, 24, 1)
    assert sorted(set(data["y_train"].tolist())) == [0, 1]


@pytest.mark.parametrize(("header", "rows", "why"), [
    ("@problemName R\n@classLabel false\n@data\n", ["1,2,3:0.5"], "@classLabel false"),
    ("@problemName R\n@data\n", ["1,2,3:0.25", "1,2,3:3"], "are real numbers"),
])
def test_other_regression_sets_are_named_as_such(tmp_path, header, rows, why):
    path = write_ts(tmp_path, "R", "TRAIN", rows, header=header)
    with pytest.raises(UcrFormatError, match="regression datasets are not supported") as error:
        read_ucr_file(path)
    assert str(path) in str(error.value) and why in str(error.value)


def test_whole_number_labels_without_a_class_list_are_classes(tmp_path):
    path = write_ts(tmp_path, "C", "TRAIN", ["1,2,3:1", "1,2,3:2.0"], header="@data\n")
    assert read_ucr_file(path).labels.tolist() == ["1", "2.0"]
