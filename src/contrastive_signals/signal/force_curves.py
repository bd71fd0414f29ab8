"""Preprocessing steps for AFM retract curves, batched over ``[N, C, L]`` arrays.

Curves are sampled on a uniform distance grid with the contact region first (index 0) and
the far, non-contact region last. The steps are registered in
:data:`contrastive_signals.signal.steps.FEATURE_STEPS`, so a YAML list declares them::

    - {name: baseline, far_fraction: 0.25}          # offset fitted on the far region
    - {name: flatten, far_fraction: 0.25}           # tilt fitted on the far region
    - {name: align_contact, threshold_sigma: 5.0, target_fraction: 0.05}
    - {name: resample_length, length: 256}
    - {name: scale, factor: 1.0e10}                 # N -> units of 100 pN
    - {name: clip, low: -10.0, high: 4.0}
    - {name: derivative_channel}

All functions return new arrays and leave their input untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _check_batch(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {x.shape}")
    return x


def _float(x: np.ndarray) -> np.ndarray:
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def far_region(length: int, far_fraction: float, *, min_points: int = 2) -> slice:
    """The last ``far_fraction`` of ``length`` samples (at least ``min_points``)."""
    if not 0 < far_fraction <= 1:
        raise ValueError(f"far_fraction must lie in (0, 1]; got {far_fraction}")
    n = max(min_points, int(round(far_fraction * length)))
    if n > length:
        raise ValueError(f"the far region needs {n} samples but curves have {length}")
    return slice(length - n, length)


def subtract_baseline(x: np.ndarray, *, far_fraction: float = 0.25, degree: int = 0
                      ) -> np.ndarray:
    """Fit a polynomial of ``degree`` over the far (non-contact) region of each curve and
    channel and subtract it from the whole curve.

    ``degree=0`` removes the baseline offset, ``degree=1`` also the tilt (flattening).

    Args:
        x: ``[N, C, L]`` curves.
        far_fraction: share of the curve, at its end, that is free of contact and events.
        degree: polynomial degree, ``>= 0``.

    Returns:
        ``[N, C, L]`` corrected curves (float dtype of ``x``).
    """
    x = _float(_check_batch(x))
    if degree < 0:
        raise ValueError(f"degree must be >= 0; got {degree}")
    length = x.shape[-1]
    region = far_region(length, far_fraction, min_points=degree + 2)
    t = np.linspace(-1.0, 1.0, length)             # well-conditioned abscissa
    design = np.vander(t, degree + 1)               # [L, D]
    rows = x.reshape(-1, length).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design[region], rows[:, region].T, rcond=None)  # [D, N*C]
    fitted = (design @ coef).T.reshape(x.shape)
    return (x - fitted).astype(x.dtype, copy=False)


def flatten(x: np.ndarray, *, far_fraction: float = 0.25, degree: int = 1) -> np.ndarray:
    """Tilt removal: :func:`subtract_baseline` with a line (``degree=1``) by default."""
    return subtract_baseline(x, far_fraction=far_fraction, degree=degree)


def noise_sigma(x: np.ndarray, *, far_fraction: float = 0.25) -> np.ndarray:
    """Robust white-noise level ``[N, C]`` of each curve from its far region: the median
    absolute first difference / (0.6745 * sqrt 2)."""
    x = _float(_check_batch(x))
    region = far_region(x.shape[-1], far_fraction, min_points=3)
    diffs = np.diff(x[..., region], axis=-1)
    return np.median(np.abs(diffs), axis=-1) / (0.6745 * np.sqrt(2.0))


def contact_indices(x: np.ndarray, *, channel: int = 0, threshold_sigma: float = 5.0,
                    far_fraction: float = 0.25) -> np.ndarray:
    """``[N]`` contact point of each (baseline-corrected) curve: the first sample where the
    force of ``channel`` falls below ``threshold_sigma`` noise levels above the baseline.
    Curves that start below it (no contact region) get 0."""
    x = _check_batch(x)
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must lie in [0, {x.shape[1]}); got {channel}")
    force = x[:, channel]
    sigma = noise_sigma(x[:, channel:channel + 1], far_fraction=far_fraction)[:, 0]
    below = force < threshold_sigma * np.maximum(sigma, np.finfo(float).tiny)[:, None]
    return np.where(below.any(axis=1), below.argmax(axis=1), 0)


def shift_curves(x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each curve right by ``shifts[n]`` samples (left when negative), repeating the
    edge values: ``out[n, :, j] = x[n, :, clip(j - shifts[n], 0, L - 1)]``."""
    x = _check_batch(x)
    length = x.shape[-1]
    source = np.clip(np.arange(length)[None, :] - np.asarray(shifts)[:, None], 0, length - 1)
    return np.take_along_axis(x, np.broadcast_to(source[:, None, :], x.shape), axis=-1)


def align_contact(x: np.ndarray, *, channel: int = 0, threshold_sigma: float = 5.0,
                  target_fraction: float = 0.05, far_fraction: float = 0.25) -> np.ndarray:
    """Contact-point alignment: shift every curve so its contact point (see
    :func:`contact_indices`) lands at sample ``round(target_fraction * L)``.

    Args:
        x: ``[N, C, L]`` baseline-corrected curves, contact region first.
        channel: the force channel that defines the contact point.
        threshold_sigma: contact = first sample below this many noise levels.
        target_fraction: where the contact point goes, as a share of ``L``.
        far_fraction: region used for the noise level.

    Returns:
        ``[N, C, L]`` aligned curves; all channels move together.
    """
    if not 0 <= target_fraction < 1:
        raise ValueError(f"target_fraction must lie in [0, 1); got {target_fraction}")
    if not threshold_sigma > 0:
        raise ValueError(f"threshold_sigma must be > 0; got {threshold_sigma}")
    x = _check_batch(x)
    contact = contact_indices(x, channel=channel, threshold_sigma=threshold_sigma,
                              far_fraction=far_fraction)
    target = int(round(target_fraction * x.shape[-1]))
    return shift_curves(x, target - contact)


def resample_length(x: np.ndarray, *, length: int) -> np.ndarray:
    """Resample curves to ``length`` samples over the same distance range.

    Downsampling averages the samples in each of ``length`` equal bins (no ringing at
    rupture steps, and it lowers white noise); upsampling interpolates linearly.

    Returns:
        ``[N, C, length]``.
    """
    x = _float(_check_batch(x))
    if length < 2:
        raise ValueError(f"length must be >= 2; got {length}")
    n = x.shape[-1]
    if length == n:
        return x.copy()
    if length < n:
        edges = np.round(np.linspace(0, n, length + 1)).astype(np.int64)
        sums = np.add.reduceat(x, edges[:-1], axis=-1)
        return (sums / np.diff(edges)).astype(x.dtype, copy=False)
    grid = np.linspace(0, n - 1, length)
    low = np.floor(grid).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    weight = (grid - low).astype(x.dtype)
    return x[..., low] * (1 - weight) + x[..., high] * weight


def scale(x: np.ndarray, *, factor: float) -> np.ndarray:
    """Multiply by ``factor`` (e.g. ``1e10``: newtons -> units of 100 pN)."""
    if not np.isfinite(factor) or factor == 0:
        raise ValueError(f"factor must be finite and non-zero; got {factor}")
    x = _float(_check_batch(x))
    return (x * factor).astype(x.dtype, copy=False)


def clip(x: np.ndarray, *, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Clip values to ``[low, high]`` (e.g. the large contact forces); None: no bound."""
    if low is not None and high is not None and low >= high:
        raise ValueError(f"need low < high; got {low} and {high}")
    return np.clip(_float(_check_batch(x)), low, high)


# ------------------------------------------------------------------ peak-detector baseline
EVENT_CLASSES = ("no_event", "single_rupture", "multiple_ruptures", "nonspecific_adhesion")
"""Class order of :func:`classify_by_peaks` (that of the AFM simulator)."""


def detect_events(force: np.ndarray, *, prominence: float) -> list[np.ndarray]:
    """Pulling events of preprocessed curves: ``scipy.signal.find_peaks`` on ``-force`` with
    a minimum prominence (an adhesion or rupture is a dip of the force that ends in a jump).

    Args:
        force: ``[N, L]`` baseline-corrected force curves.
        prominence: minimum dip depth, in the units of ``force``.

    Returns:
        ``N`` int arrays of event sample indices.
    """
    import scipy.signal

    force = np.asarray(force)
    if force.ndim != 2:
        raise ValueError(f"force must have shape [N, L]; got {force.shape}")
    if not prominence > 0:
        raise ValueError(f"prominence must be > 0; got {prominence}")
    return [scipy.signal.find_peaks(-row, prominence=prominence)[0] for row in force]


def classify_by_peaks(events: list[np.ndarray], *, contact_index: int, contact_zone: int
                      ) -> np.ndarray:
    """Rule-based classes (indices into :data:`EVENT_CLASSES`) from detected events.

    Events within ``contact_zone`` samples after ``contact_index`` count as adhesion at
    contact; the others as ruptures: 0 ruptures and no adhesion -> ``no_event``; 0 ruptures
    with adhesion -> ``nonspecific_adhesion``; 1 -> ``single_rupture``; more ->
    ``multiple_ruptures``.

    Returns:
        ``[N]`` int64 labels.
    """
    if contact_zone < 0:
        raise ValueError(f"contact_zone must be >= 0; got {contact_zone}")
    labels = np.empty(len(events), dtype=np.int64)
    for i, idx in enumerate(events):
        ruptures = int(np.sum(idx > contact_index + contact_zone))
        adhesion = len(idx) > ruptures
        labels[i] = (2 if ruptures > 1 else 1 if ruptures == 1 else 3 if adhesion else 0)
    return labels


@dataclass(frozen=True)
class PeakDetectorGrid:
    """The settings :func:`tune_find_peaks` tries: minimum dip ``prominences`` and contact
    zones (samples after the contact point whose events count as adhesion)."""

    prominences: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.8)
    contact_zones: tuple[int, ...] = (2, 4, 8, 12)

    def __post_init__(self) -> None:
        if not self.prominences or min(self.prominences) <= 0:
            raise ValueError("prominences must be a non-empty list of values > 0")
        if not self.contact_zones or min(self.contact_zones) < 0:
            raise ValueError("contact_zones must be a non-empty list of values >= 0")


def aligned_contact_index(steps: Sequence[Mapping[str, Any]], length: int) -> int:
    """The sample index where the ``align_contact`` step (the last one of ``steps``) puts the
    contact point in curves of ``length`` samples."""
    align = [step for step in steps if step["name"] == "align_contact"]
    if not align:
        raise ValueError("the preprocessing steps need an align_contact step: the peak "
                         "detector tells adhesion from ruptures by the aligned contact point")
    return int(round(align[-1].get("target_fraction", 0.05) * length))


def tune_find_peaks(force: np.ndarray, labels: np.ndarray, *, contact_index: int,
                       grid: PeakDetectorGrid,
                       score: Callable[[np.ndarray, np.ndarray], float]) -> dict[str, Any]:
    """Grid search of the detector's prominence and contact zone on labelled curves,
    maximising ``score(labels, predicted)`` (ties: the first, i.e. smallest, setting).

    Args:
        force: ``[N, L]`` preprocessed force channel; labels: ``[N]``.
        contact_index: the aligned contact point (sample index).

    Returns:
        ``{"prominence", "contact_zone", "contact_index", "train_macro_f1"}`` (the best
        score under that name).
    """
    best: dict[str, Any] = {"train_macro_f1": -1.0}
    for prominence in grid.prominences:
        events = detect_events(force, prominence=prominence)
        for zone in grid.contact_zones:
            predicted = classify_by_peaks(events, contact_index=contact_index, contact_zone=zone)
            value = score(labels, predicted)
            if value > best["train_macro_f1"]:
                best = {"prominence": float(prominence), "contact_zone": int(zone),
                        "contact_index": int(contact_index), "train_macro_f1": value}
    return best


def find_peaks_predict(force: np.ndarray, detector: Mapping[str, Any]
                          ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(labels [N], events)`` of a tuned detector (:func:`tune_find_peaks`) on ``force``
    ``[N, L]``."""
    events = detect_events(force, prominence=detector["prominence"])
    return classify_by_peaks(events, contact_index=detector["contact_index"],
                             contact_zone=detector["contact_zone"]), events
