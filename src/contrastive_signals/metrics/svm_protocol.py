"""TS2Vec's evaluation protocol for frozen time-series embeddings, and the raw 1-NN floor.

``svm_protocol_predict`` follows TS2Vec's ``fit_svm`` (tasks/_eval_protocols.py): an RBF SVM
with ``gamma='scale'``; when every class has at least 5 training examples on average and there
are at least 50, ``C`` is chosen by 5-fold cross-validation over
``{1e-4, ..., 1e4, inf}`` (with TS2Vec's ``max_iter=10**7`` in the search); otherwise
``C = inf`` (a hard margin) is used directly, with sklearn's unlimited iterations.
``C = inf`` is passed to libsvm as is (scikit-learn accepts it), not replaced by a large finite
``C``, so the hard margin is the authors' one.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from contrastive_signals.metrics.probes import _check_train_test, accuracy, linear_probe_predict

# TS2Vec's grid, ending with a hard margin, and the iteration cap its grid search sets.
HARD_MARGIN_C = float("inf")
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, HARD_MARGIN_C)
GRID_MAX_ITER = 10_000_000


def svm_protocol_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *,
                         c_grid: tuple[float, ...] = C_GRID, folds: int = 5,
                         n_jobs: int | None = 1) -> tuple[np.ndarray, float]:
    """Fit TS2Vec's SVM on ``train_x`` ``[N, D]`` / ``train_y`` ``[N]``, predict ``test_x``.

    Args:
        c_grid: candidate ``C`` values for the cross-validation.
        folds: cross-validation folds (stratified, unshuffled: deterministic, as TS2Vec's
            ``cv=5``).
        n_jobs: processes fitting the search's (C, fold) pairs (joblib's convention: -1 every
            core). Each fit is deterministic, so the chosen ``C`` does not depend on it.

    Returns:
        ``([M] predictions, chosen C)``.
    """
    train_x, train_y, test_x = _check_train_test(train_x, train_y, test_x)
    svm = fit_svm_protocol(train_x, train_y, c_grid=c_grid, folds=folds, n_jobs=n_jobs)
    return svm.predict(test_x), float(svm.C)


def fit_svm_protocol(train_x: np.ndarray, train_y: np.ndarray, *,
                     c_grid: tuple[float, ...] = C_GRID, folds: int = 5,
                     n_jobs: int | None = 1) -> SVC:
    """The SVM of :func:`svm_protocol_predict`, fitted on ``[N, D]`` / ``[N]``: the hard
    margin for small sets, else the grid search's best ``C`` refitted on all of train (its
    ``C`` and ``max_iter`` rebuild it: :func:`svm_with`)."""
    classes = np.unique(train_y)
    if len(classes) < 2:
        raise ValueError(f"the SVM needs at least 2 classes in train_y, got {classes.tolist()}")
    if len(train_x) // len(classes) < folds or len(train_x) < 50:
        return svm_with(HARD_MARGIN_C).fit(train_x, train_y)
    # sklearn's cv=5 for a classifier is StratifiedKFold(5) without shuffling (TS2Vec's choice);
    # with the smallest class below `folds` members it warns, which it also does in TS2Vec.
    cv = StratifiedKFold(n_splits=folds, shuffle=False)
    search = GridSearchCV(svm_with(None, max_iter=GRID_MAX_ITER), {"C": list(c_grid)}, cv=cv,
                          n_jobs=n_jobs)
    search.fit(train_x, train_y)
    return search.best_estimator_


def svm_with(c: float | None, *, max_iter: int = -1) -> SVC:
    """An unfitted RBF SVM (``gamma='scale'``) of the protocol; ``c=None`` leaves sklearn's
    default (the grid search sets it). ``svm_with(svm.C, max_iter=svm.max_iter).fit(x, y)``
    refits a fitted one exactly (libsvm is deterministic without probabilities)."""
    svm = SVC(kernel="rbf", gamma="scale", max_iter=max_iter)
    return svm if c is None else svm.set_params(C=c)


def nearest_neighbour_predict(train_x: np.ndarray, train_y: np.ndarray,
                              test_x: np.ndarray) -> np.ndarray:
    """1-NN with Euclidean distance on flattened raw series ``[N, ...]`` -> ``[M]`` labels."""
    train_x = np.asarray(train_x, dtype=float).reshape(len(train_x), -1)
    test_x = np.asarray(test_x, dtype=float).reshape(len(test_x), -1)
    train_x, train_y, test_x = _check_train_test(train_x, train_y, test_x)
    return KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(train_x, train_y).predict(
        test_x)


def protocol_accuracies(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                        test_y: np.ndarray, *, probe_c: float,
                        n_jobs: int | None = 1) -> dict[str, float]:
    """Test accuracies of frozen embeddings ``[N, D]`` / ``[M, D]``: TS2Vec's SVM protocol
    (``svm.acc``, its search on ``n_jobs`` processes) and the linear probe of :mod:`.probes`
    with ``C = probe_c`` (``linear.acc``)."""
    svm, _ = svm_protocol_predict(train_x, train_y, test_x, n_jobs=n_jobs)
    linear = linear_probe_predict(train_x, train_y, test_x, c=probe_c)
    return {"svm.acc": accuracy(test_y, svm), "linear.acc": accuracy(test_y, linear)}
