"""Probes on frozen embeddings: linear, kNN, RVFL, few-label subsets, label efficiency."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from contrastive_signals.metrics import probes
from contrastive_signals.metrics.probes import (
    accuracy,
    few_labels_per_class,
    knn_predict,
    label_efficiency,
    linear_probe_predict,
    ridge_solve,
    rvfl_features,
    rvfl_predict,
    rvfl_random_weights,
)


def blobs(n_per_class: int, *, seed: int, n_classes: int = 3, dim: int = 5, spread: float = 0.1):
    """``n_classes`` tight Gaussian blobs centred 10 apart: ``x [N, dim]``, ``y [N]``."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(n_classes, dim)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.standard_normal((len(y), dim))
    return x, y


@pytest.fixture(scope="module")
def train_test():
    train_x, train_y = blobs(20, seed=0)
    test_x, test_y = blobs(10, seed=1)
    return train_x, train_y, test_x, test_y


def test_accuracy_by_hand():
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75


@pytest.mark.parametrize(
    "predict",
    [
        linear_probe_predict,
        lambda a, b, c: knn_predict(a, b, c, k=5),
        lambda a, b, c: knn_predict(a, b, c, k=3, metric="euclidean"),
        lambda a, b, c: rvfl_predict(a, b, c, hidden_dim=64, seed=0),
    ],
    ids=["linear", "knn_cosine", "knn_euclidean", "rvfl"],
)
def test_probes_separate_blobs_perfectly(predict, train_test):
    train_x, train_y, test_x, test_y = train_test
    predictions = predict(train_x, train_y, test_x)
    assert predictions.shape == test_y.shape
    assert accuracy(test_y, predictions) == 1.0


def test_rvfl_solves_linearly_separable_toy_problem_and_keeps_label_values():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(60, 2))
    x[:, 0] += np.where(x[:, 0] > 0, 0.5, -0.5)  # margin of 1 around x0 = 0
    y = np.where(x[:, 0] > 0, 7, 3)  # labels need not be 0..C-1
    predictions = rvfl_predict(x, y, x, hidden_dim=16, ridge=1e-3, seed=0)
    assert set(np.unique(predictions)) == {3, 7}
    np.testing.assert_array_equal(predictions, y)


def test_rvfl_features_layout():
    x = np.arange(6.0).reshape(3, 2)
    weights, biases = rvfl_random_weights(2, hidden_dim=4, rng=np.random.default_rng(0))
    h = rvfl_features(x, weights, biases, activation="relu")
    assert h.shape == (3, 2 + 4 + 1)
    np.testing.assert_array_equal(h[:, :2], x)  # direct link
    np.testing.assert_allclose(h[:, 2:6], np.maximum(x @ weights + biases, 0))
    np.testing.assert_array_equal(h[:, -1], 1.0)  # bias column


def test_rvfl_is_reproducible_per_seed():
    x, y = blobs(5, seed=0, spread=5.0)
    first = rvfl_predict(x, y, x, hidden_dim=8, seed=11)
    np.testing.assert_array_equal(first, rvfl_predict(x, y, x, hidden_dim=8, seed=11))
    w0, _ = rvfl_random_weights(3, hidden_dim=4, rng=np.random.default_rng(0))
    w1, _ = rvfl_random_weights(3, hidden_dim=4, rng=np.random.default_rng(1))
    assert not np.allclose(w0, w1)


@pytest.mark.parametrize(
    ("n_samples", "hidden_dim"), [(80, 10), (12, 40)], ids=["primal", "dual"]
)
def test_ridge_solve_matches_sklearn_ridge_on_rvfl_features(n_samples, hidden_dim):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_samples, 4))
    weights, biases = rvfl_random_weights(4, hidden_dim=hidden_dim, rng=rng)
    h = rvfl_features(x, weights, biases)
    targets = np.eye(3)[rng.integers(0, 3, size=n_samples)]
    lam = 0.3
    beta = ridge_solve(h, targets, ridge=lam)
    reference = Ridge(alpha=lam, fit_intercept=False).fit(h, targets).coef_.T
    assert beta.shape == (h.shape[1], 3)
    np.testing.assert_allclose(beta, reference, rtol=1e-7, atol=1e-9)


def test_ridge_primal_equals_dual():
    rng = np.random.default_rng(1)
    h, y = rng.standard_normal((6, 6)), rng.standard_normal((6, 2))
    primal = ridge_solve(h, y, ridge=0.5)  # F <= N takes the primal branch
    dual = h.T @ np.linalg.solve(h @ h.T + 0.5 * np.eye(6), y)
    np.testing.assert_allclose(primal, dual, atol=1e-10)


def test_few_labels_per_class_draws_distinct_items_of_each_class():
    labels = np.array([0] * 5 + [1] * 4 + [2] * 6)
    idx = few_labels_per_class(labels, per_class=3, rng=np.random.default_rng(0))
    assert idx.dtype == np.int64 and len(np.unique(idx)) == 9
    np.testing.assert_array_equal(np.bincount(labels[idx]), [3, 3, 3])
    again = few_labels_per_class(labels, per_class=3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx, again)


def test_few_labels_per_class_raises_on_too_few_items():
    with pytest.raises(ValueError, match="class 1 has 2 items, fewer than per_class=3"):
        few_labels_per_class(np.array([0, 0, 0, 1, 1]), per_class=3,
                             rng=np.random.default_rng(0))


def test_label_efficiency_is_reproducible_and_uses_distinct_subsets(train_test, monkeypatch):
    train_x, train_y, test_x, test_y = train_test
    kwargs = dict(per_class=2, repeats=3, seed=5)
    result = label_efficiency(train_x, train_y, test_x, test_y, **kwargs)
    assert result == label_efficiency(train_x, train_y, test_x, test_y, **kwargs)
    assert len(result["scores"]) == 3
    assert result["mean"] == pytest.approx(np.mean(result["scores"]))
    assert result["std"] == pytest.approx(np.std(result["scores"]))

    seen = []
    real = probes.linear_probe_predict

    def recording(x, y, test, **kw):
        seen.append(x.copy())
        return real(x, y, test, **kw)

    monkeypatch.setattr(probes, "linear_probe_predict", recording)
    label_efficiency(train_x, train_y, test_x, test_y, **kwargs)
    for r, subset in enumerate(seen):  # repeat r draws with seed + r
        idx = few_labels_per_class(train_y, per_class=2, rng=np.random.default_rng(5 + r))
        np.testing.assert_array_equal(subset, train_x[idx])
    assert len({subset.tobytes() for subset in seen}) == 3


def test_bad_inputs_raise_clear_errors(train_test):
    train_x, train_y, test_x, _ = train_test
    with pytest.raises(ValueError, match="one label per train_x row"):
        linear_probe_predict(train_x, train_y[:-1], test_x)
    with pytest.raises(ValueError, match="same width"):
        rvfl_predict(train_x, train_y, test_x[:, :2], seed=0)
    with pytest.raises(ValueError, match="k must be in"):
        knn_predict(train_x[:4], train_y[:4], test_x, k=5)
    with pytest.raises(ValueError, match="equal length"):
        accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="activation"):
        rvfl_predict(train_x, train_y, test_x, seed=0, activation="gelu")
    with pytest.raises(ValueError, match="ridge must be > 0"):
        ridge_solve(np.eye(2), np.eye(2), ridge=0.0)
