"""Readouts on frozen embeddings: linear probe, kNN, RVFL, and label-efficiency curves.

Every function takes embeddings ``x`` as float arrays ``[N, D]`` and integer labels ``[N]``,
and returns predictions in the label space of ``train_y``. Randomness comes only from an
explicit ``seed`` or ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from contrastive_signals.metrics.retrieval import retrieval_metrics
from contrastive_signals.metrics.seeds import mean_and_std

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),  # overflow-free logistic
}


def _check_train_test(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes and return ``(train_x [N, D], train_y [N], test_x [M, D])`` as arrays."""
    train_x, train_y, test_x = np.asarray(train_x), np.asarray(train_y), np.asarray(test_x)
    if train_x.ndim != 2 or test_x.ndim != 2:
        raise ValueError(
            f"train_x and test_x must be 2-D [N, D]; got shapes {train_x.shape} and {test_x.shape}"
        )
    if train_y.ndim != 1 or len(train_y) != len(train_x):
        raise ValueError(
            f"train_y must be 1-D with one label per train_x row; got train_x {train_x.shape} "
            f"and train_y {train_y.shape}"
        )
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            f"train_x and test_x must have the same width D; got {train_x.shape[1]} and "
            f"{test_x.shape[1]}"
        )
    if len(train_x) == 0:
        raise ValueError("train_x is empty")
    return train_x, train_y, test_x


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of positions where ``y_true [N]`` equals ``y_pred [N]``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of equal length; got {y_true.shape} and {y_pred.shape}"
        )
    if len(y_true) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(y_true == y_pred))


def linear_probe_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    *,
    c: float = 1.0,
    max_iter: int = 2000,
) -> np.ndarray:
    """Fit StandardScaler + multinomial logistic regression on train, predict ``test_x``.

    Args:
        train_x: ``[N, D]`` embeddings; train_y: ``[N]`` labels; test_x: ``[M, D]``.
        c: inverse L2 strength of the logistic regression.
        max_iter: lbfgs iteration cap.

    Returns:
        ``[M]`` predicted labels.
    """
    train_x, train_y, test_x = _check_train_test(train_x, train_y, test_x)
    return fit_linear_probe(train_x, train_y, c=c, max_iter=max_iter).predict(test_x)


def fit_linear_probe(train_x: np.ndarray, train_y: np.ndarray, *, c: float = 1.0,
                     max_iter: int = 2000):
    """The fitted probe of :func:`linear_probe_predict` (``predict``, ``predict_proba`` over
    ``classes_``): StandardScaler + logistic regression on ``[N, D]`` / ``[N]``."""
    # lbfgs fits the multinomial (softmax) loss for >2 classes; the deterministic solver needs
    # no random_state.
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter)
    )
    return model.fit(train_x, train_y)


def knn_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    *,
    k: int = 5,
    metric: str = "cosine",
) -> np.ndarray:
    """Majority vote of the ``k`` nearest train embeddings under ``metric``.

    Args:
        train_x: ``[N, D]``; train_y: ``[N]``; test_x: ``[M, D]``.
        k: neighbours, ``1 <= k <= N``.
        metric: any scikit-learn neighbours metric (``"cosine"``, ``"euclidean"``, ...).

    Returns:
        ``[M]`` predicted labels.
    """
    train_x, train_y, test_x = _check_train_test(train_x, train_y, test_x)
    if not 1 <= k <= len(train_x):
        raise ValueError(f"k must be in [1, {len(train_x)}] (the train set size); got k={k}")
    # brute force: exact, and the only algorithm scikit-learn allows for cosine.
    model = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    model.fit(train_x, train_y)
    return model.predict(test_x)


def rvfl_random_weights(
    input_dim: int, *, hidden_dim: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the fixed random hidden layer of an RVFL network.

    Weights are uniform in ``[-sqrt(3 / D), sqrt(3 / D)]`` so that, on standardised inputs,
    each pre-activation has unit variance and tanh neither saturates nor stays linear; biases
    are uniform in ``[-1, 1]``.

    Returns:
        ``(weights [D, H], biases [H])``.
    """
    if input_dim < 1 or hidden_dim < 0:
        raise ValueError(f"need input_dim >= 1 and hidden_dim >= 0; got {input_dim}, {hidden_dim}")
    scale = np.sqrt(3.0 / input_dim)
    weights = rng.uniform(-scale, scale, size=(input_dim, hidden_dim))
    biases = rng.uniform(-1.0, 1.0, size=hidden_dim)
    return weights, biases


def rvfl_features(
    x: np.ndarray, weights: np.ndarray, biases: np.ndarray, *, activation: str = "tanh"
) -> np.ndarray:
    """RVFL design matrix: direct link, random nonlinear features and a bias column.

    Args:
        x: ``[N, D]`` (already standardised).
        weights: ``[D, H]``; biases: ``[H]``.
        activation: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.

    Returns:
        ``[N, D + H + 1]`` = ``concat(x, activation(x @ weights + biases), 1)``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    if x.ndim != 2 or weights.shape != (x.shape[1], len(biases)):
        raise ValueError(
            f"shapes do not fit: x {x.shape}, weights {weights.shape}, biases {biases.shape}"
        )
    hidden = ACTIVATIONS[activation](x @ weights + biases)
    return np.concatenate([x, hidden, np.ones((len(x), 1), dtype=hidden.dtype)], axis=1)


def ridge_solve(h: np.ndarray, y: np.ndarray, *, ridge: float) -> np.ndarray:
    """Closed-form ridge regression without intercept: ``argmin |h b - y|^2 + ridge |b|^2``.

    Uses the primal ``(h^T h + λI)^-1 h^T y`` when there are no more features than samples
    and the dual ``h^T (h h^T + λI)^-1 y`` otherwise, so the system solved is
    ``min(N, F)`` square. Both are the same minimiser for ``ridge > 0``.

    Args:
        h: ``[N, F]`` design matrix; y: ``[N, K]`` targets; ridge: ``λ > 0``.

    Returns:
        ``[F, K]`` output weights.
    """
    if ridge <= 0:
        raise ValueError(f"ridge must be > 0 (it keeps the system well-posed); got {ridge}")
    if h.ndim != 2 or y.ndim != 2 or len(h) != len(y):
        raise ValueError(f"need h [N, F] and y [N, K] with equal N; got {h.shape} and {y.shape}")
    n, f = h.shape
    if f <= n:
        return np.linalg.solve(h.T @ h + ridge * np.eye(f), h.T @ y)
    return h.T @ np.linalg.solve(h @ h.T + ridge * np.eye(n), y)


def rvfl_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    *,
    hidden_dim: int = 512,
    ridge: float = 1e-2,
    seed: int,
    activation: str = "tanh",
) -> np.ndarray:
    """Random vector functional link readout (Pao et al. 1994; Igelnik & Pao 1995).

    Inputs are standardised with train statistics, expanded by :func:`rvfl_features` with
    fixed random weights from ``np.random.default_rng(seed)``, and the output layer is the
    ridge solution (:func:`ridge_solve`) for one-hot targets.

    Args:
        train_x: ``[N, D]``; train_y: ``[N]``; test_x: ``[M, D]``.
        hidden_dim: number of random hidden units ``H``.
        ridge: L2 strength ``λ`` of the output layer.
        seed: seeds the hidden layer.
        activation: hidden nonlinearity, see :func:`rvfl_features`.

    Returns:
        ``[M]`` predicted labels (values taken from ``train_y``).
    """
    train_x, train_y, test_x = _check_train_test(train_x, train_y, test_x)
    classes, targets = np.unique(train_y, return_inverse=True)
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant dimensions carry no signal; avoid 0/0
    weights, biases = rvfl_random_weights(
        train_x.shape[1], hidden_dim=hidden_dim, rng=np.random.default_rng(seed)
    )
    h_train = rvfl_features((train_x - mean) / std, weights, biases, activation=activation)
    beta = ridge_solve(h_train, np.eye(len(classes))[targets], ridge=ridge)
    h_test = rvfl_features((test_x - mean) / std, weights, biases, activation=activation)
    return classes[np.argmax(h_test @ beta, axis=1)]


def few_labels_per_class(
    labels: np.ndarray, *, per_class: int, rng: np.random.Generator
) -> np.ndarray:
    """Sample ``per_class`` distinct indices of every class in ``labels [N]``.

    Returns:
        Sorted int64 indices ``[C * per_class]``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {labels.shape}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1; got {per_class}")
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < per_class:
            raise ValueError(
                f"class {cls.item()!r} has {len(members)} items, fewer than per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def label_efficiency(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    per_class: int = 10,
    repeats: int = 5,
    seed: int,
    c: float = 1.0,
) -> dict:
    """Linear-probe accuracy when only ``per_class`` labels per class are available.

    Repeat ``r`` draws its subset with ``np.random.default_rng(seed + r)``, so a repeat is
    reproducible on its own.

    Args:
        train_x: ``[N, D]``; train_y: ``[N]``; test_x: ``[M, D]``; test_y: ``[M]``.

    Returns:
        ``{"mean": float, "std": float, "scores": list[float]}``; ``std`` is the population
        standard deviation (``ddof=0``) of the ``repeats`` test accuracies.
    """
    train_x, train_y, test_x = _check_train_test(train_x, train_y, test_x)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    if len(np.asarray(test_y)) != len(test_x):
        raise ValueError(
            f"test_y must have one label per test_x row; got {len(test_y)} and {len(test_x)}"
        )
    scores = []
    for r in range(repeats):
        idx = few_labels_per_class(
            train_y, per_class=per_class, rng=np.random.default_rng(seed + r)
        )
        predictions = linear_probe_predict(train_x[idx], train_y[idx], test_x, c=c)
        scores.append(accuracy(test_y, predictions))
    mean, std = mean_and_std(scores)
    return {"mean": mean, "std": std, "scores": scores}


def embedding_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                     test_y: np.ndarray, *, seed: int, knn_k: int, knn_metric: str,
                     probe_c: float, probe_max_iter: int, rvfl_hidden_dim: int,
                     rvfl_ridge: float, labels_per_class: int, label_subsets: int,
                     retrieval_metric: str) -> tuple[dict[str, float], np.ndarray]:
    """Every frozen-embedding score of one encoder: linear probe (all labels and
    ``labels_per_class`` labels, mean and std over ``label_subsets`` seeded subsets), kNN, RVFL
    readout, and test-set retrieval (recall@1/@5, mAP).

    Args:
        train_x, test_x: embeddings ``[N, D]``, ``[M, D]``; train_y, test_y: labels.

    Returns:
        ``({"linear_probe.acc", "linear_probe_10pc.acc", "linear_probe_10pc.std", "knn.acc",
        "rvfl.acc", "recall_at_1", "recall_at_5", "map"}, linear-probe predictions [M])``.
    """
    probe = linear_probe_predict(train_x, train_y, test_x, c=probe_c, max_iter=probe_max_iter)
    few = label_efficiency(train_x, train_y, test_x, test_y, per_class=labels_per_class,
                           repeats=label_subsets, seed=seed, c=probe_c)
    knn = knn_predict(train_x, train_y, test_x, k=knn_k, metric=knn_metric)
    rvfl = rvfl_predict(train_x, train_y, test_x, hidden_dim=rvfl_hidden_dim, ridge=rvfl_ridge,
                        seed=seed)
    retrieval = retrieval_metrics(torch.from_numpy(test_x), torch.from_numpy(test_y),
                                  ks=(1, 5), metric=retrieval_metric)
    metrics = {
        "linear_probe.acc": accuracy(test_y, probe),
        "linear_probe_10pc.acc": float(few["mean"]),
        "linear_probe_10pc.std": float(few["std"]),
        "knn.acc": accuracy(test_y, knn),
        "rvfl.acc": accuracy(test_y, rvfl),
        **{name: float(value) for name, value in retrieval.items()},
    }
    return metrics, probe
