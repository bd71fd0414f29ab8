"""The classifiers a practitioner would pick instead of a learned representation for UCR/UEA
classification, from aeon (not re-implemented here): MiniRocket, MultiRocket and 1-NN DTW.

Each is fitted on the raw training series and scored on the test split, with its fit and
predict seconds, so that the report puts accuracy and cost beside the contrastive methods'.

Input layout (the project's, :func:`contrastive_signals.data.ucr.load_ucr_dataset`): ``x``
``[N, T, C]`` zero-padded after each series' end, ``mask`` ``[N, T]`` (true on observed steps)
or ``None`` for equal-length sets. aeon wants ``[N, C, T]``; 1-NN DTW takes the unequal-length
series as a list of ``[C, T_i]`` arrays (aeon supports it), the ROCKET family the padded array
(it needs equal lengths; the padding is what TS2Vec's encoder sees too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from contrastive_signals.metrics.probes import accuracy

BASELINES = ("minirocket", "multirocket", "dtw_1nn")


@dataclass(frozen=True)
class BaselineScore:
    """Test accuracy and seconds of one fitted baseline (``fit_seconds`` excludes numba's
    one-off compilation, which :func:`warm_up` pays before timing)."""

    accuracy: float
    fit_seconds: float
    predict_seconds: float


def check_baseline_names(names: tuple[str, ...] | list[str]) -> None:
    """Raise ``ValueError`` naming an unknown baseline."""
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")


def make_baseline(name: str, *, seed: int, n_jobs: int):
    """An unfitted aeon classifier: MiniRocket / MultiRocket with their default kernels and
    ridge classifier (the published configuration), or 1-NN with full-window DTW."""
    check_baseline_names([name])
    if name == "minirocket":
        from aeon.classification.convolution_based import MiniRocketClassifier
        return MiniRocketClassifier(random_state=seed, n_jobs=n_jobs)
    if name == "multirocket":
        from aeon.classification.convolution_based import MultiRocketClassifier
        return MultiRocketClassifier(random_state=seed, n_jobs=n_jobs)
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    return KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw", n_jobs=n_jobs)


def channels_first(x: np.ndarray, mask: np.ndarray | None, *, unequal: bool
                   ) -> np.ndarray | list[np.ndarray]:
    """``x`` ``[N, T, C]`` -> ``[N, C, T]`` float64, or (``unequal`` and a mask that is not
    all true) a list of ``[C, T_i]`` arrays holding each series' observed steps only."""
    series = np.ascontiguousarray(np.transpose(x, (0, 2, 1)), dtype=np.float64)
    if not unequal or mask is None or mask.all():
        return series
    return [s[:, m] for s, m in zip(series, mask, strict=True)]


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def score_baseline(name: str, x_train: np.ndarray, mask_train: np.ndarray | None,
                   y_train: np.ndarray, x_test: np.ndarray, mask_test: np.ndarray | None,
                   y_test: np.ndarray, *, seed: int = 0, n_jobs: int = 1) -> BaselineScore:
    """Fit ``name`` on the training split and score it on the test split.

    Args:
        x_train, x_test: ``[N, T, C]`` series (zero-padded).
        mask_train, mask_test: ``[N, T]`` observed steps, or ``None``.
        y_train, y_test: ``[N]`` integer labels.
    """
    unequal = name == "dtw_1nn"
    train = channels_first(x_train, mask_train, unequal=unequal)
    test = channels_first(x_test, mask_test, unequal=unequal)
    classifier = make_baseline(name, seed=seed, n_jobs=n_jobs)
    _, fit_seconds = _timed(lambda: classifier.fit(train, y_train))
    predicted, predict_seconds = _timed(lambda: classifier.predict(test))
    return BaselineScore(accuracy=accuracy(y_test, np.asarray(predicted)),
                         fit_seconds=fit_seconds, predict_seconds=predict_seconds)


def warm_up(names: tuple[str, ...] | list[str], *, n_jobs: int = 1) -> float:
    """Fit and apply each baseline once on a tiny random set so that numba compiles (or loads
    from its cache) its kernels before anything is timed; returns the seconds it took."""
    generator = np.random.default_rng(0)
    y = np.arange(8) % 2
    start = time.perf_counter()
    for channels in (1, 2):  # univariate and multivariate sets run different kernels
        x = generator.standard_normal((8, 32, channels)).astype(np.float32)
        for name in names:
            score_baseline(name, x, None, y, x, None, y, seed=0, n_jobs=n_jobs)
    return time.perf_counter() - start
