"""The choice of extra unlabelled nights in benchmarks/wav2vec_pretrain_more_nights.py."""

import pytest

from benchmarks.wav2vec_pretrain_more_nights import extra_nights

NAMES = ["SC4001", "SC4011", "SC4211", "SC4221", "SC4222", "SC4231", "SC4241"]


def test_extra_nights_are_the_first_of_the_later_subjects_in_order():
    assert extra_nights(NAMES, first_subject=22, count=3) == ["SC4221", "SC4222", "SC4231"]
    assert extra_nights(NAMES, first_subject=23, count=2) == ["SC4231", "SC4241"]


def test_too_few_extra_nights_is_refused_with_the_count_found():
    with pytest.raises(ValueError, match="--extra 5: only 4 recordings of subjects >= 22"):
        extra_nights(NAMES, first_subject=22, count=5)


def test_a_malformed_recording_name_is_named():
    with pytest.raises(ValueError, match="SC4x21"):
        extra_nights(["SC4x21"], first_subject=0, count=1)
