"""Labelled AFM force-distance retract curves: contact, baseline, noise and worm-like-chain
stretching that ends in rupture events.

A retract curve is the cantilever force ``F`` (newtons, positive = repulsive) against the
tip-sample separation ``z`` (metres) while the tip is pulled away from the surface:

- **contact** (``z < 0``): the tip still indents the sample, ``F = k_contact * (-z)``;
- **non-specific adhesion**: the tip sticks to the surface just after contact and the
  cantilever is pulled down linearly until the bond gives at ``F_adh``, within a few nm of
  contact; afterwards the force relaxes back to the baseline over ~1 nm;
- **specific tethers**: a molecule attached between tip and surface is stretched; its force
  follows the worm-like-chain (WLC) interpolation of Marko and Siggia,
  ``F(z) = kT/p * (1 / (4 (1 - z/L)^2) - 1/4 + z/L)`` for contour length ``L`` and
  persistence length ``p``, pulling the tip down (negative force) until it reaches the
  rupture force ``f_r`` and the bond breaks. Several sequential tethers (or unfolding domains)
  with increasing contour lengths give the saw-tooth of multiple ruptures;
- **baseline**: a constant offset, a linear tilt over ``z``, a weak optical-interference
  sinusoid and white thermal noise.

Classes (:data:`AFM_CLASSES`): ``no_event`` (contact and baseline only), ``single_rupture``
(one WLC tether), ``multiple_ruptures`` (2 or more tethers), ``nonspecific_adhesion``
(adhesion at contact only). Curves with tethers may also carry a small adhesion at contact
(``adhesion_with_events``): the class is decided by the tethers.

Everything here is arrays and an explicit ``numpy.random.Generator``; writing the curves to
disk is :mod:`contrastive_signals.data.afm_curves`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

AFM_CLASSES: tuple[str, ...] = (
    "no_event",
    "single_rupture",
    "multiple_ruptures",
    "nonspecific_adhesion",
)
KT_JOULE = 4.11e-21  # Boltzmann constant times 298 K
NM = 1e-9
PN = 1e-12


def _check_range(name: str, value: tuple[float, float], *, low: float = 0.0) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ValueError(f"{name} must be [min, max] with {low} <= min <= max; got {list(value)}")


@dataclass(frozen=True)
class AfmSimulationConfig:
    """Simulator settings; lengths in nm, forces in pN (the units AFM users quote).

    ``class_balance`` gives the relative frequency of :data:`AFM_CLASSES` in that order.
    """

    n_curves: int = 2400
    seed: int = 0
    class_balance: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    retract_points: int = 1024
    approach_points: int = 64
    indentation_nm: tuple[float, float] = (20.0, 40.0)   # contact region depth
    max_distance_nm: float = 500.0                       # end of the retract segment
    spring_constant: tuple[float, float] = (0.02, 0.06)  # N/m, contact slope
    noise_pn: float = 10.0                               # thermal noise std (default level)
    baseline_offset_pn: float = 100.0                    # std of the constant offset
    baseline_tilt_pn_per_100nm: float = 20.0             # std of the linear tilt
    interference_pn: float = 4.0                         # max optical-interference amplitude
    contour_length_nm: tuple[float, float] = (40.0, 250.0)   # single tether
    persistence_length_nm: tuple[float, float] = (0.3, 0.8)
    rupture_force_median_pn: float = 120.0               # log-normal rupture forces
    rupture_force_log_sigma: float = 0.35
    rupture_force_min_pn: float = 40.0
    multiple_events: tuple[int, int] = (2, 4)            # tethers in a multiple-rupture curve
    multiple_first_contour_nm: tuple[float, float] = (40.0, 150.0)
    multiple_contour_gap_nm: tuple[float, float] = (20.0, 50.0)
    adhesion_force_pn: tuple[float, float] = (60.0, 400.0)
    adhesion_length_nm: tuple[float, float] = (2.0, 20.0)
    adhesion_with_events: float = 0.3                    # P(small adhesion) for tether curves
    sampling_rate: float = 2000.0                        # Hz, for the time column

    def __post_init__(self) -> None:
        if self.n_curves < 1:
            raise ValueError(f"n_curves must be >= 1; got {self.n_curves}")
        if len(self.class_balance) != len(AFM_CLASSES) or min(self.class_balance) < 0 \
                or sum(self.class_balance) <= 0:
            raise ValueError(f"class_balance must be {len(AFM_CLASSES)} weights >= 0 (for "
                             f"{list(AFM_CLASSES)}) with a positive sum; got "
                             f"{list(self.class_balance)}")
        if self.retract_points < 16 or self.approach_points < 2:
            raise ValueError(f"need retract_points >= 16 and approach_points >= 2; got "
                             f"{self.retract_points} and {self.approach_points}")
        if self.noise_pn < 0 or self.baseline_offset_pn < 0 or self.baseline_tilt_pn_per_100nm < 0 \
                or self.interference_pn < 0:
            raise ValueError("noise_pn, baseline_offset_pn, baseline_tilt_pn_per_100nm and "
                             "interference_pn must be >= 0")
        for name in ("indentation_nm", "spring_constant", "contour_length_nm",
                     "persistence_length_nm", "multiple_first_contour_nm",
                     "multiple_contour_gap_nm", "adhesion_force_pn", "adhesion_length_nm"):
            _check_range(name, getattr(self, name))
        if self.persistence_length_nm[0] <= 0 or self.spring_constant[0] <= 0:
            raise ValueError("persistence_length_nm and spring_constant must be > 0")
        low, high = self.multiple_events
        if not 2 <= low <= high:
            raise ValueError(f"multiple_events must be [min, max] with 2 <= min <= max; got "
                             f"{list(self.multiple_events)}")
        longest = max(self.contour_length_nm[1], self.multiple_first_contour_nm[1]
                      + (high - 1) * self.multiple_contour_gap_nm[1])
        if longest >= self.max_distance_nm:
            raise ValueError(f"the longest contour length ({longest:g} nm) must stay below "
                             f"max_distance_nm ({self.max_distance_nm:g} nm) so every tether "
                             f"ruptures inside the curve")
        if not self.rupture_force_median_pn > 0 or self.rupture_force_log_sigma < 0:
            raise ValueError("rupture_force_median_pn must be > 0 and rupture_force_log_sigma >= 0")
        if not 0 <= self.adhesion_with_events <= 1:
            raise ValueError(f"adhesion_with_events must lie in [0, 1]; got "
                             f"{self.adhesion_with_events}")
        if not self.sampling_rate > 0:
            raise ValueError(f"sampling_rate must be > 0; got {self.sampling_rate}")


def wlc_force(z: np.ndarray, *, contour_length: float, persistence_length: float,
              temperature_energy: float = KT_JOULE) -> np.ndarray:
    """Marko-Siggia worm-like-chain force (newtons, >= 0) at extension ``z`` (metres).

    ``F = kT/p * (1 / (4 (1 - x)^2) - 1/4 + x)`` with ``x = z / L``; 0 for ``z <= 0`` and
    ``inf`` for ``z >= L``. Shapes follow ``z``.
    """
    x = np.asarray(z, dtype=float) / contour_length
    with np.errstate(divide="ignore"):
        force = temperature_energy / persistence_length * (
            1.0 / (4.0 * (1.0 - x) ** 2) - 0.25 + x)
    force = np.where(x >= 1.0, np.inf, force)
    return np.where(x <= 0.0, 0.0, force)


def rupture_forces(n: int, *, config: AfmSimulationConfig, rng: np.random.Generator
                   ) -> np.ndarray:
    """``[n]`` log-normal rupture forces in newtons, at least ``rupture_force_min_pn``."""
    forces = config.rupture_force_median_pn * np.exp(
        config.rupture_force_log_sigma * rng.standard_normal(n))
    return np.maximum(forces, config.rupture_force_min_pn) * PN


def tether_force(z: np.ndarray, *, contour_lengths: np.ndarray, persistence_lengths: np.ndarray,
                 forces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Force of sequential tethers (sorted by contour length) that each rupture at ``forces``.

    Tether ``i`` carries the load from the rupture of tether ``i - 1`` until its own WLC force
    reaches ``forces[i]`` (or its contour length), then the load passes to tether ``i + 1``.

    Args:
        z: ``[L]`` increasing separations (m).
        contour_lengths, persistence_lengths, forces: ``[E]`` per tether (m, m, N).

    Returns:
        ``(force [L] <= 0 in N, rupture indices [E])``: the pulling force and the grid index
        of each rupture (the last sample still under load).
    """
    total = np.zeros_like(z, dtype=float)
    ruptures = []
    start = 0
    for contour, persistence, rupture in zip(contour_lengths, persistence_lengths, forces,
                                             strict=True):
        wlc = wlc_force(z, contour_length=contour, persistence_length=persistence)
        over = np.flatnonzero((wlc >= rupture) & (np.arange(len(z)) >= start))
        stop = int(over[0]) if over.size else len(z) - 1
        # The last loaded sample reaches at most the rupture force.
        segment = np.minimum(wlc[start:stop + 1], rupture)
        total[start:stop + 1] = -segment
        ruptures.append(stop)
        start = stop + 1
    return total, np.asarray(ruptures, dtype=np.int64)


def adhesion_force(z: np.ndarray, *, peak_force: float, length: float,
                   release_length: float = 1.0 * NM) -> np.ndarray:
    """Non-specific adhesion at contact (N, <= 0): a linear pull to ``-peak_force`` over
    ``length`` metres after contact, then an exponential release over ``release_length``."""
    pulled = -peak_force * np.clip(z / length, 0.0, 1.0)
    released = -peak_force * np.exp(-(z - length) / release_length)
    return np.where(z <= 0, 0.0, np.where(z <= length, pulled, released))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | None = None):
    return rng.uniform(bounds[0], bounds[1], size)


def simulate_retract_curve(label: int, *, config: AfmSimulationConfig, rng: np.random.Generator
                           ) -> dict[str, Any]:
    """One labelled retract curve.

    Returns:
        ``{"separation": [L] m, "force": [L] N, "label": int, "class": str,
        "rupture_indices": [E] int, "spring_constant": float}`` with
        ``L = config.retract_points``.
    """
    if not 0 <= label < len(AFM_CLASSES):
        raise ValueError(f"label must lie in [0, {len(AFM_CLASSES)}); got {label}")
    name = AFM_CLASSES[label]
    indentation = _uniform(rng, config.indentation_nm) * NM
    z = np.linspace(-indentation, config.max_distance_nm * NM, config.retract_points)
    k_contact = float(_uniform(rng, config.spring_constant))
    force = np.where(z < 0, -k_contact * z, 0.0)

    ruptures = np.zeros(0, dtype=np.int64)
    if name in ("single_rupture", "multiple_ruptures"):
        if name == "single_rupture":
            contours = np.array([_uniform(rng, config.contour_length_nm)])
        else:
            n = int(rng.integers(config.multiple_events[0], config.multiple_events[1] + 1))
            gaps = _uniform(rng, config.multiple_contour_gap_nm, n - 1)
            contours = _uniform(rng, config.multiple_first_contour_nm) + np.r_[0, np.cumsum(gaps)]
        contours = contours * NM
        persistence = _uniform(rng, config.persistence_length_nm, len(contours)) * NM
        pulled, ruptures = tether_force(z, contour_lengths=contours, persistence_lengths=persistence,
                                        forces=rupture_forces(len(contours), config=config, rng=rng))
        force = force + pulled
    adhesion = name == "nonspecific_adhesion" or (
        name != "no_event" and rng.random() < config.adhesion_with_events)
    if adhesion:
        peak = _uniform(rng, config.adhesion_force_pn) * PN
        if name != "nonspecific_adhesion":
            peak *= 0.5  # a weaker stick next to a specific tether
        force = force + adhesion_force(z, peak_force=peak,
                                       length=_uniform(rng, config.adhesion_length_nm) * NM)

    offset = config.baseline_offset_pn * rng.standard_normal() * PN
    tilt = config.baseline_tilt_pn_per_100nm * rng.standard_normal() * PN / (100 * NM)
    period = rng.uniform(150.0, 400.0) * NM
    interference = rng.uniform(0, config.interference_pn) * PN * np.sin(
        2 * np.pi * z / period + rng.uniform(0, 2 * np.pi))
    noise = config.noise_pn * PN * rng.standard_normal(len(z))
    force = force + offset + tilt * z + interference + noise
    return {"separation": z, "force": force, "label": label, "class": name,
            "rupture_indices": ruptures, "spring_constant": k_contact}


def approach_curve(retract: dict[str, Any], *, points: int) -> tuple[np.ndarray, np.ndarray]:
    """A plain approach segment for a retract curve: baseline until contact, then contact.

    Returns ``(separation [points] decreasing, force [points])`` in m and N.
    """
    z = np.linspace(retract["separation"][-1], retract["separation"][0], points)
    baseline = float(np.median(retract["force"][-max(2, len(retract["force"]) // 8):]))
    return z, np.where(z < 0, -retract["spring_constant"] * z, 0.0) + baseline


def draw_labels(config: AfmSimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """``[n_curves]`` labels drawn with ``class_balance`` as relative class frequencies."""
    weights = np.asarray(config.class_balance, dtype=float)
    return rng.choice(len(AFM_CLASSES), size=config.n_curves, p=weights / weights.sum())


def simulate_curves(config: AfmSimulationConfig) -> list[dict[str, Any]]:
    """``config.n_curves`` labelled force-distance curves from ``config.seed``.

    Each curve is a dict with the retract fields of :func:`simulate_retract_curve` plus
    ``"approach_separation"``, ``"approach_force"`` and ``"curve_id"`` (``sim-00042``).
    """
    rng = np.random.default_rng(config.seed)
    labels = draw_labels(config, rng)
    curves = []
    for i, label in enumerate(labels):
        curve = simulate_retract_curve(int(label), config=config, rng=rng)
        curve["approach_separation"], curve["approach_force"] = approach_curve(
            curve, points=config.approach_points)
        curve["curve_id"] = f"sim-{i:05d}"
        curves.append(curve)
    return curves
