"""TS2Vec's SVM protocol and the raw 1-NN floor."""

import numpy as np
import pytest

from contrastive_signals.metrics.svm_protocol import (
    C_GRID,
    HARD_MARGIN_C,
    nearest_neighbour_predict,
    svm_protocol_predict,
)


def blobs(n_per_class, classes=3, dim=5, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 3
    y = np.repeat(np.arange(classes), n_per_class)
    return centres[y] + spread * rng.normal(size=(len(y), dim)), y


def test_grid_search_on_enough_data():
    x, y = blobs(40)
    train = np.arange(len(y)) % 4 != 0
    predicted, c = svm_protocol_predict(x[train], y[train], x[~train])
    yt = y[~train]
    assert c in C_GRID
    assert np.mean(predicted == yt) == 1.0


def test_small_sets_use_the_hard_margin_like_ts2vec():
    x, y = blobs(4)  # 12 < 50 examples: no cross-validation
    predicted, c = svm_protocol_predict(x, y, x)
    assert c == HARD_MARGIN_C and np.array_equal(predicted, y)


def test_deterministic():
    x, y = blobs(25, spread=2.0)
    first = svm_protocol_predict(x, y, x[:10])
    second = svm_protocol_predict(x, y, x[:10])
    assert np.array_equal(first[0], second[0]) and first[1] == second[1]


def test_the_search_on_two_processes_chooses_and_predicts_as_on_one():
    x, y = blobs(40, spread=2.0)  # 60 training points: a search, which picks C = 1 here
    one = svm_protocol_predict(x[::2], y[::2], x[1::2], n_jobs=1)
    two = svm_protocol_predict(x[::2], y[::2], x[1::2], n_jobs=2)
    assert one[1] == two[1] == 1.0 and np.array_equal(one[0], two[0])
    assert 0.8 < np.mean(one[0] == y[1::2]) < 1.0


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="at least 2 classes"):
        svm_protocol_predict(np.zeros((60, 2)), np.zeros(60), np.zeros((3, 2)))


def test_raw_nearest_neighbour_on_series():
    train = np.array([[[0.0], [0.0]], [[5.0], [5.0]]])  # [N, T, C]
    test = np.array([[[0.4], [0.1]], [[4.0], [6.0]]])
    assert nearest_neighbour_predict(train, np.array([7, 9]), test).tolist() == [7, 9]
    with pytest.raises(ValueError, match="same width"):
        nearest_neighbour_predict(train, np.array([7, 9]), np.zeros((1, 3, 1)))


def test_grid_and_hard_margin_are_ts2vecs():
    # TS2Vec's fit_svm: C in {1e-4, ..., 1e4, inf}; C = inf itself (sklearn accepts it), not a
    # large finite stand-in.
    assert C_GRID == (1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3, 1e4, np.inf)
    assert np.isinf(HARD_MARGIN_C)


def test_protocol_accuracies_report_svm_and_linear_probe():
    from contrastive_signals.metrics.svm_protocol import protocol_accuracies

    rng = np.random.default_rng(0)
    train = np.r_[rng.normal(-2, 0.3, (10, 3)), rng.normal(2, 0.3, (10, 3))]
    labels = np.r_[np.zeros(10, int), np.ones(10, int)]
    scores = protocol_accuracies(train, labels, train[::2], labels[::2], probe_c=1.0)
    assert scores == {"svm.acc": 1.0, "linear.acc": 1.0}
