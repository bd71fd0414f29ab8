"""aeon's practical baselines as the timeseries pipeline fits them: input layout, scores on a
set they must solve, and parameter errors."""

import numpy as np
import pytest

from contrastive_signals.config import from_params
from contrastive_signals.metrics.ts_baselines import (
    BASELINES,
    channels_first,
    check_baseline_names,
    score_baseline,
)
from contrastive_signals.pipelines.timeseries.params import BaselineParams, UcrParams


def _two_shapes(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sines (class 0) and square waves (class 1) of random phase, ``[N, T, 1]``, with
    unequal observed lengths (``mask`` ``[N, T]``) and zero padding after each end."""
    generator = np.random.default_rng(seed)
    t = np.arange(length) / length
    labels = np.arange(n) % 2
    phase = generator.uniform(0, 2 * np.pi, n)[:, None]
    wave = np.sin(2 * np.pi * 3 * t + phase)
    x = np.where(labels[:, None] == 0, wave, np.sign(wave)) + 0.05 * generator.standard_normal(
        (n, length))
    observed = generator.integers(length * 3 // 4, length + 1, n)
    mask = np.arange(length)[None, :] < observed[:, None]
    return (x * mask)[..., None].astype(np.float32), mask, labels


def test_channels_first_layouts():
    x, mask, _ = _two_shapes(6, 20, seed=0)
    dense = channels_first(x, mask, unequal=False)
    assert dense.shape == (6, 1, 20) and dense.dtype == np.float64
    np.testing.assert_array_equal(dense[:, 0, :], x[..., 0])
    ragged = channels_first(x, mask, unequal=True)
    assert [s.shape for s in ragged] == [(1, int(m.sum())) for m in mask]
    np.testing.assert_array_equal(ragged[2][0], x[2, mask[2], 0])
    # equal lengths stay one array even when unequal series are allowed
    assert isinstance(channels_first(x, np.ones_like(mask), unequal=True), np.ndarray)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_separates_sines_from_square_waves(name):
    x_train, mask_train, y_train = _two_shapes(20, 48, seed=1)
    x_test, mask_test, y_test = _two_shapes(30, 48, seed=2)
    score = score_baseline(name, x_train, mask_train, y_train, x_test, mask_test, y_test,
                           seed=0, n_jobs=1)
    assert score.accuracy >= 0.95
    assert score.fit_seconds > 0 and score.predict_seconds > 0


def test_baseline_seed_reproduces_accuracy():
    x_train, mask_train, y_train = _two_shapes(20, 48, seed=3)
    x_test, mask_test, y_test = _two_shapes(40, 48, seed=4)
    y_train = (np.arange(20) // 2) % 2  # labels unrelated to the shapes: accuracy is chance
    scores = [score_baseline("minirocket", x_train, mask_train, y_train, x_test, mask_test,
                             y_test, seed=7).accuracy for _ in range(2)]
    assert scores[0] == scores[1]


def test_unknown_baseline_is_named():
    with pytest.raises(ValueError, match=r"unknown baseline\(s\) \['rocket_forest'\]"):
        check_baseline_names(["minirocket", "rocket_forest"])
    with pytest.raises(ValueError, match=r"timeseries\.ucr\.baselines.*rocket_forest"):
        from_params(UcrParams, {"methods": {"ts2vec": {}},
                                "baselines": {"names": ["rocket_forest"]}},
                    path="timeseries.ucr")
    with pytest.raises(ValueError, match="n_jobs must be >= 1"):
        BaselineParams(n_jobs=0)


def test_a_single_name_is_a_list_of_one():
    assert BaselineParams(names="dtw_1nn").names == ("dtw_1nn",)
