"""AFM preprocessing steps: baseline and tilt from the far region, contact alignment,
resampling, the YAML step list, and the find_peaks rules."""

import numpy as np
import pytest

from contrastive_signals.signal.force_curves import (
    PeakDetectorGrid,
    align_contact,
    aligned_contact_index,
    classify_by_peaks,
    clip,
    contact_indices,
    detect_events,
    find_peaks_predict,
    flatten,
    noise_sigma,
    resample_length,
    scale,
    subtract_baseline,
    tune_find_peaks,
)
from contrastive_signals.signal.steps import apply_feature_steps, validate_feature_steps

L = 200


def curve(contact=30, offset=0.0, tilt=0.0, noise=0.0, seed=0):
    """Contact ramp down to 0 at `contact`, flat afterwards, plus baseline and noise."""
    t = np.arange(L, dtype=float)
    force = np.clip(contact - t, 0, None) * 0.5
    rng = np.random.default_rng(seed)
    return force + offset + tilt * t / L + noise * rng.standard_normal(L)


def test_baseline_and_flatten_remove_offset_and_tilt_fitted_on_the_far_region():
    x = np.stack([curve(offset=3.0), curve(offset=-1.0, tilt=2.0)])[:, None]   # [2, 1, L]
    original = x.copy()
    offset_only = subtract_baseline(x, far_fraction=0.3)
    np.testing.assert_allclose(offset_only[0, 0, -60:], 0, atol=1e-12)
    flat = flatten(x, far_fraction=0.3)
    np.testing.assert_allclose(flat[:, 0, 40:], 0, atol=1e-9)   # the whole baseline, not just far
    np.testing.assert_allclose(flat[:, 0, :30], np.stack([curve(), curve()])[:, :30], atol=1e-9)
    np.testing.assert_array_equal(x, original)                 # input untouched


def test_noise_sigma_is_robust_to_a_step():
    x = curve(noise=0.2)[None, None]
    x[..., -20] += 50.0
    assert noise_sigma(x, far_fraction=0.5)[0, 0] == pytest.approx(0.2, rel=0.2)


def test_align_contact_moves_every_contact_point_to_the_target():
    x = np.stack([curve(contact=c, noise=0.01, seed=c) for c in (20, 45, 70)])[:, None]
    x = np.concatenate([x, -x], axis=1)                  # a second channel moves with the first
    assert contact_indices(x, threshold_sigma=5.0).tolist() == pytest.approx([20, 45, 70], abs=1)
    aligned = align_contact(x, threshold_sigma=5.0, target_fraction=0.1)
    assert contact_indices(aligned, threshold_sigma=5.0).tolist() == pytest.approx([20] * 3, abs=1)
    np.testing.assert_allclose(aligned[:, 1], -aligned[:, 0])


def test_resample_length_averages_bins_down_and_interpolates_up():
    x = np.arange(8.0)[None, None]
    np.testing.assert_allclose(resample_length(x, length=4)[0, 0], [0.5, 2.5, 4.5, 6.5])
    np.testing.assert_allclose(resample_length(x, length=15)[0, 0], np.linspace(0, 7, 15))
    with pytest.raises(ValueError, match="length"):
        resample_length(x, length=1)


def test_scale_and_clip():
    x = np.array([[[1e-10, -5e-10, 2e-9]]])
    np.testing.assert_allclose(clip(scale(x, factor=1e10), low=-2, high=4), [[[1, -2, 4]]])
    with pytest.raises(ValueError, match="factor"):
        scale(x, factor=0.0)


def test_steps_run_from_yaml_list_and_bad_step_arguments_fail_early():
    steps = [{"name": "baseline", "far_fraction": 0.25}, {"name": "flatten"},
             {"name": "align_contact", "target_fraction": 0.05},
             {"name": "resample_length", "length": 50}, {"name": "scale", "factor": 2.0},
             {"name": "clip", "low": -5.0, "high": 5.0}, {"name": "derivative_channel"}]
    x = np.stack([curve(offset=1.0, noise=0.01, seed=s) for s in range(3)])[:, None]
    out, _ = apply_feature_steps(x, steps, sampling_rate=1.0)
    assert out.shape == (3, 2, 50)
    np.testing.assert_allclose(out[:, 1], np.gradient(out[:, 0], axis=-1), atol=1e-6)
    with pytest.raises(ValueError, match=r"feature step 0 \(baseline\): unknown argument"):
        validate_feature_steps([{"name": "baseline", "far": 0.2}])
    with pytest.raises(ValueError, match="far_fraction"):
        apply_feature_steps(x, [{"name": "baseline", "far_fraction": 1.5}], sampling_rate=1.0)


def test_peak_rules_tell_the_four_classes_apart():
    base = np.zeros((4, 100))
    base[1, 50] = -1.0                      # one rupture far from contact
    base[2, [40, 70]] = -1.0                # two ruptures
    base[3, 7] = -2.0                       # adhesion at contact (index 5)
    events = detect_events(base, prominence=0.5)
    assert [len(e) for e in events] == [0, 1, 2, 1]
    labels = classify_by_peaks(events, contact_index=5, contact_zone=4)
    assert labels.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="prominence"):
        detect_events(base, prominence=0.0)


def test_find_peaks_tuning_takes_the_best_and_first_setting():
    base = np.zeros((4, 100))
    base[1, 50] = -1.0
    base[2, [40, 70]] = -1.0
    base[3, 7] = -2.0
    labels = np.array([0, 1, 2, 3])
    grid = PeakDetectorGrid(prominences=(0.2, 0.5, 3.0), contact_zones=(0, 4, 8))
    accuracy = lambda y, p: float(np.mean(y == p))  # noqa: E731
    best = tune_find_peaks(base, labels, contact_index=5, grid=grid, score=accuracy)
    assert best == {"prominence": 0.2, "contact_zone": 4, "contact_index": 5,
                    "train_macro_f1": 1.0}
    predicted, events = find_peaks_predict(base, best)
    assert predicted.tolist() == [0, 1, 2, 3] and len(events) == 4
    with pytest.raises(ValueError, match="prominences"):
        PeakDetectorGrid(prominences=())


def test_the_aligned_contact_index_comes_from_the_align_step():
    steps = [{"name": "baseline"}, {"name": "align_contact", "target_fraction": 0.1}]
    assert aligned_contact_index(steps, 256) == 26
    assert aligned_contact_index([{"name": "align_contact"}], 100) == 5
    with pytest.raises(ValueError, match="align_contact"):
        aligned_contact_index([{"name": "baseline"}], 100)
