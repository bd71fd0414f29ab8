"""Declarative feature steps: order, sampling-rate threading and validation errors."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import yaml

from contrastive_signals.signal import filters, spectral, wavelets
from contrastive_signals.signal.steps import (
    FEATURE_STEPS,
    TERMINAL_STEPS,
    apply_feature_steps,
    apply_feature_steps_to_dataset,
    validate_feature_steps,
)

STEPS_YAML = """
feature_steps:
  - {name: bandpass, low_hz: 0.5, high_hz: 30}
  - {name: resample, to_hz: 100}
  - {name: derivative_channel}
"""


def _batch(shape=(3, 2, 1000), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_yaml_steps_apply_in_order_and_thread_the_sampling_rate():
    steps = yaml.safe_load(STEPS_YAML)["feature_steps"]
    x = _batch()
    out, rate = apply_feature_steps(x, steps, sampling_rate=250.0)

    expected = filters.bandpass(x, sampling_rate=250.0, low_hz=0.5, high_hz=30)
    expected = filters.resample(expected, from_hz=250.0, to_hz=100)
    expected = filters.add_derivative_channel(expected, sampling_rate=100.0)
    assert rate == 100.0
    assert out.shape == (3, 4, 400)
    np.testing.assert_allclose(out, expected)


def test_terminal_steps_return_their_feature_arrays():
    x = _batch((2, 1, 512))
    out, rate = apply_feature_steps(
        x, [{"name": "normalize"}, {"name": "spectrogram", "nperseg": 64}], sampling_rate=128.0
    )
    ref = spectral.spectrogram(filters.normalize(x), sampling_rate=128.0, nperseg=64)["power"]
    np.testing.assert_allclose(out, ref)
    assert rate == 128.0

    out, _ = apply_feature_steps(x, [{"name": "fft_magnitude"}], sampling_rate=128.0)
    assert out.shape == (2, 1, 257)
    out, _ = apply_feature_steps(
        x, [{"name": "wavelet", "wavelet": "db4", "level": 3}], sampling_rate=128.0
    )
    np.testing.assert_allclose(out, wavelets.wavelet_features(x, wavelet="db4", level=3))


def test_empty_steps_return_a_copy():
    x = _batch()
    out, rate = apply_feature_steps(x, [], sampling_rate=100.0)
    np.testing.assert_array_equal(out, x)
    assert rate == 100.0 and not np.shares_memory(out, x)


def test_input_not_mutated():
    x = _batch()
    before = x.copy()
    steps = [{"name": "detrend"}, {"name": "notch", "freq_hz": 50}, {"name": "normalize"}]
    apply_feature_steps(x, steps, sampling_rate=250.0)
    np.testing.assert_array_equal(x, before)


def test_bad_step_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"feature step 1: unknown name 'bandstop'.*'bandpass'"):
        validate_feature_steps([{"name": "detrend"}, {"name": "bandstop"}])


def test_bad_argument_lists_valid_arguments():
    with pytest.raises(
        ValueError, match=r"feature step 0 \(bandpass\): unknown argument.*'low'.*'low_hz'"
    ):
        validate_feature_steps([{"name": "bandpass", "low": 1, "high_hz": 30}])


def test_missing_and_injected_arguments_raise():
    with pytest.raises(ValueError, match=r"step 0 \(lowpass\): missing.*cutoff_hz"):
        validate_feature_steps([{"name": "lowpass"}])
    with pytest.raises(ValueError, match=r"step 0 \(notch\).*sampling_rate"):
        validate_feature_steps([{"name": "notch", "freq_hz": 50, "sampling_rate": 250}])


def test_terminal_step_must_be_last():
    with pytest.raises(ValueError, match=r"feature step 0 \(spectrogram\).*last"):
        validate_feature_steps([{"name": "spectrogram"}, {"name": "normalize"}])


def test_malformed_steps_raise():
    with pytest.raises(ValueError, match="'name'"):
        validate_feature_steps([{"low_hz": 1}])
    with pytest.raises(ValueError, match="list"):
        validate_feature_steps({"name": "normalize"})


def test_validation_happens_before_anything_runs(monkeypatch):
    calls = []

    def spy(x, *, scope="channel"):
        calls.append(scope)
        return x

    monkeypatch.setitem(FEATURE_STEPS, "normalize", spy)
    with pytest.raises(ValueError, match="step 1"):
        apply_feature_steps(
            _batch(), [{"name": "normalize"}, {"name": "nope"}], sampling_rate=100.0
        )
    assert calls == []


def test_cutoff_above_nyquist_after_resample_names_the_step():
    steps = [{"name": "resample", "to_hz": 50}, {"name": "lowpass", "cutoff_hz": 30}]
    with pytest.raises(
        ValueError, match=r"feature step 1 \(lowpass\) at 50 Hz: cutoff_hz=30.*Nyquist"
    ):
        apply_feature_steps(_batch(), steps, sampling_rate=250.0)


def test_registry_functions_take_x_first_then_keywords():
    for name, fn in FEATURE_STEPS.items():
        params = list(inspect.signature(fn).parameters.values())
        assert params[0].name == "x", name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), name
    assert TERMINAL_STEPS <= set(FEATURE_STEPS)


# ------------------------------------------------------------ whole datasets in one batch
DATASET_STEPS = [{"name": "bandpass", "low_hz": 1.0, "high_hz": 20.0},
                 {"name": "resample", "to_hz": 50.0}, {"name": "derivative_channel"}]


def _recordings_dataset():
    rng = np.random.default_rng(3)
    return {"sampling_rate": 100.0, "recordings": [
        {"name": f"r{i}", "epochs": torch.from_numpy(rng.standard_normal((n, 2, 300)).astype(np.float32)),
         "labels": torch.arange(n)} for i, n in enumerate((4, 1, 6))]}


def test_dataset_recordings_match_each_array_alone_and_keep_structure():
    data = _recordings_dataset()
    before = [r["epochs"].clone() for r in data["recordings"]]
    out, rate = apply_feature_steps_to_dataset(data, DATASET_STEPS, signal_key="epochs",
                                               sampling_rate=100.0)
    assert rate == 50.0 and out["sampling_rate"] == 100.0  # the node updates the rate itself
    for original, result, kept in zip(data["recordings"], out["recordings"], before, strict=True):
        expected, _ = apply_feature_steps(kept.double().numpy(), DATASET_STEPS, sampling_rate=100.0)
        assert result["epochs"].dtype == torch.float32 and result["epochs"].shape == (len(kept), 4, 150)
        np.testing.assert_allclose(result["epochs"].numpy(), expected, rtol=1e-5, atol=1e-5)
        assert result["name"] == original["name"] and result["labels"] is original["labels"]
        assert torch.equal(original["epochs"], kept)  # the input is not modified


def test_dataset_splits_of_numpy_arrays():
    rng = np.random.default_rng(0)
    data = {part: {"signals": rng.standard_normal((n, 1, 64)), "y": np.arange(n)}
            for part, n in (("train", 5), ("test", 3))}
    out, rate = apply_feature_steps_to_dataset(
        data, [{"name": "fft_magnitude"}], signal_key="signals", sampling_rate=8.0)
    assert rate == 8.0 and out["train"]["signals"].shape == (5, 1, 33)
    np.testing.assert_allclose(out["test"]["signals"],
                               np.abs(np.fft.rfft(data["test"]["signals"], axis=-1)), atol=1e-12)


def test_dataset_errors_name_the_key_and_the_shapes():
    with pytest.raises(ValueError, match="no signal arrays under the key 'signals'"):
        apply_feature_steps_to_dataset(_recordings_dataset(), DATASET_STEPS, signal_key="signals",
                                       sampling_rate=100.0)
    mixed = {"a": {"x": np.zeros((2, 1, 10))}, "b": {"x": np.zeros((2, 2, 10))}}
    with pytest.raises(ValueError, match=r"same C and L.*\(2, 2, 10\)"):
        apply_feature_steps_to_dataset(mixed, [], signal_key="x", sampling_rate=1.0)
    with pytest.raises(ValueError, match="unknown name 'fft'"):
        apply_feature_steps_to_dataset(mixed, [{"name": "fft"}], signal_key="x", sampling_rate=1.0)
