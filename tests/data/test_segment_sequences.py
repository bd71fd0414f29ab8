"""Synthetic sine-segment sequences for CTC: shapes, segment rules, the sines themselves,
noise level and reproducibility."""

import math

import numpy as np
import pytest
import torch

from contrastive_signals.data.segment_sequences import (
    SegmentDataParams,
    SegmentSequenceSpec,
    make_segment_sequences,
    segment_boundaries,
    target_sequences,
)

SPEC = SegmentSequenceSpec(length=400, min_segment=40, max_segment=120,
                           frequencies=(0.1, 0.2, 0.3), noise_std=0.3)


def draw(n=64, spec=SPEC, seed=0):
    return make_segment_sequences(n, spec=spec, generator=torch.Generator().manual_seed(seed))


def segments(frame_labels):
    """(start, end, class) runs of one ``[L]`` label row."""
    cuts = [0, *segment_boundaries(frame_labels), len(frame_labels)]
    return [(a, b, int(frame_labels[a])) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def test_shapes_and_dtypes():
    data = draw(16)
    assert data["signals"].shape == (16, 1, 400) and data["signals"].dtype == torch.float32
    assert data["targets"].shape == (16, SPEC.max_segments) == (16, 10)
    assert data["targets"].dtype == torch.int64 and data["target_lengths"].shape == (16,)
    assert data["frame_labels"].shape == (16, 400)


@pytest.mark.parametrize("spec", [
    SPEC,
    SegmentSequenceSpec(length=100, min_segment=10, max_segment=30, frequencies=(0.05, 0.25)),
    SegmentSequenceSpec(length=50, min_segment=40, max_segment=120),  # one segment only
    SegmentSequenceSpec(length=120, min_segment=40, max_segment=40),  # exactly three of 40
])
def test_segments_follow_the_rules(spec):
    data = draw(200, spec=spec, seed=3)
    for row in range(200):
        runs = segments(data["frame_labels"][row])
        lengths = [end - start for start, end, _ in runs]
        classes = [label for _, _, label in runs]
        assert sum(lengths) == spec.length
        assert all(spec.min_segment <= n <= spec.max_segment for n in lengths)
        # Targets = the segment classes in order (adjacent classes differ, so runs of the
        # frame labels are exactly the segments), in 1..K, padded with the blank 0.
        n = int(data["target_lengths"][row])
        assert data["targets"][row, :n].tolist() == classes
        assert all(1 <= c <= spec.num_classes for c in classes)
        assert (data["targets"][row, n:] == 0).all()
    assert data["target_lengths"].max() <= spec.max_segments


def test_classes_and_lengths_vary():
    data = draw(500)
    runs = [segments(row) for row in data["frame_labels"]]
    lengths = np.array([end - start for r in runs for start, end, _ in r])
    classes = np.array([label for r in runs for _, _, label in r])
    assert set(classes.tolist()) == {1, 2, 3}
    assert lengths.min() == 40 and lengths.max() == 120
    assert len(set(data["target_lengths"].tolist())) >= 3


def test_noise_free_segments_are_sines_of_their_class_frequency():
    """Inside a segment x[t] = sin(2 pi f t + phase), so x[t-1] + x[t+1] = 2 cos(2 pi f) x[t]."""
    spec = SegmentSequenceSpec(noise_std=0.0, amplitude=0.5)
    data = draw(20, spec=spec)
    signals = data["signals"][:, 0].double()
    for row in range(20):
        for start, end, label in segments(data["frame_labels"][row]):
            x = signals[row, start:end]
            ratio = 2 * math.cos(2 * math.pi * spec.frequencies[label - 1])
            torch.testing.assert_close(x[:-2] + x[2:], ratio * x[1:-1], atol=1e-5, rtol=0)
            assert x.abs().max() <= 0.5 + 1e-6


def test_noise_adds_its_variance():
    """var(sine with random phase) = A^2 / 2, plus the noise variance."""
    for noise in (0.0, 1.0):
        data = draw(400, spec=SegmentSequenceSpec(noise_std=noise))
        assert data["signals"].var().item() == pytest.approx(0.5 + noise**2, rel=0.03)


def test_same_seed_same_sequences_other_seed_different():
    a, b, c = draw(seed=5), draw(seed=5), draw(seed=6)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["signals"], c["signals"])


def test_generator_is_the_only_randomness():
    torch.manual_seed(0)
    first = draw(seed=1)
    torch.manual_seed(123)
    assert torch.equal(first["signals"], draw(seed=1)["signals"])


def test_target_sequences_unpads():
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    assert target_sequences(targets, torch.tensor([2, 1])) == [[1, 2], [3]]


@pytest.mark.parametrize("kwargs, message", [
    ({"min_segment": 0}, "min_segment"),
    ({"min_segment": 50, "max_segment": 40}, "max_segment"),
    ({"length": 30}, "length"),
    ({"length": 150, "min_segment": 80, "max_segment": 100}, "adds up"),
    ({"frequencies": (0.1,)}, "at least 2"),
    ({"frequencies": (0.1, 0.6)}, "Nyquist|0.5"),
    ({"frequencies": (0.1, 0.1)}, "differ"),
    ({"noise_std": -1.0}, "noise_std"),
    ({"amplitude": 0.0}, "amplitude"),
])
def test_bad_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SegmentSequenceSpec(**kwargs)


def test_data_params_give_the_spec_and_fixed_evaluation_sets():
    params = SegmentDataParams(sequence_length=160, min_segment=20, max_segment=60, val_size=3,
                               test_size=5)
    assert params.spec == SegmentSequenceSpec(length=160, min_segment=20, max_segment=60,
                                              noise_std=1.0)
    sets = params.evaluation_sets()
    assert sets["val"]["signals"].shape == (3, 1, 160) and sets["test"]["signals"].shape == (5, 1, 160)
    again = params.evaluation_sets()
    assert all(torch.equal(sets[p]["signals"], again[p]["signals"]) for p in ("val", "test"))
    with pytest.raises(ValueError, match="val_size must be >= 1"):
        SegmentDataParams(val_size=0)
    with pytest.raises(ValueError, match="noise_std"):
        SegmentDataParams(noise_std=-1.0)
