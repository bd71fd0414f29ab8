"""Sleep epochs helpers: parts of a split, stage counts and the sampler of consecutive epochs
(the epochs dataset and the split themselves are tested through the `sleep` pipeline)."""

import pytest
import torch

from contrastive_signals.data.sleep_epochs import (
    IngestionParams,
    recordings_of,
    segment_sampler,
    stage_counts,
)


def recording(name: str, n: int) -> dict:
    values = torch.arange(n * 2 * 5, dtype=torch.float).view(n, 2, 5) + 1000 * ord(name)
    return {"name": name, "epochs": values,
            "labels": torch.arange(n) % 5}


def test_segments_are_consecutive_epochs_with_channels_apart():
    recordings = [recording("a", 4), recording("b", 1), recording("c", 6)]
    draw = segment_sampler(recordings, 3)
    x = draw(50, torch.Generator().manual_seed(0))
    assert x.shape == (50, 2, 15)
    for row in x:                        # each row: 3 consecutive epochs of one usable recording
        found = [r for r in recordings if len(r["labels"]) >= 3 and any(
            torch.equal(r["epochs"][s:s + 3].transpose(0, 1).flatten(1), row)
            for s in range(len(r["labels"]) - 2))]
        assert [r["name"] for r in found] in (["a"], ["c"])
    assert torch.equal(draw(5, torch.Generator().manual_seed(1)),
                       draw(5, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match=r"no recording holds 7 epochs \(p\.segment_epochs\)"):
        segment_sampler(recordings, 7, what="p.segment_epochs")


def test_parts_and_stage_counts():
    epochs = {"recordings": [recording("a", 4), recording("b", 2), recording("c", 6)]}
    split = {"train": {"recordings": ["c", "a"]}, "test": {"recordings": ["b"]}}
    assert [r["name"] for r in recordings_of(epochs, split, "train")] == ["a", "c"]
    assert stage_counts(epochs["recordings"][:2]) == {"W": 2, "N1": 2, "N2": 1, "N3": 1, "REM": 0}
    assert sum(stage_counts([]).values()) == 0


def test_ingestion_parameters_are_checked():
    with pytest.raises(ValueError, match="normalize must be one of"):
        IngestionParams(normalize="zscore")
    with pytest.raises(ValueError, match="Nyquist"):
        IngestionParams(high_hz=60.0)
