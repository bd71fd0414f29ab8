"""The AFM retract-curve simulator: WLC physics, classes, reproducibility, bad settings."""

import numpy as np
import pytest

from contrastive_signals.data.afm_simulator import (
    AFM_CLASSES,
    KT_JOULE,
    NM,
    PN,
    AfmSimulationConfig,
    simulate_curves,
    simulate_retract_curve,
    tether_force,
    wlc_force,
)

SMALL = {"n_curves": 40, "retract_points": 512, "seed": 3}


def test_wlc_force_matches_marko_siggia_by_hand():
    # x = z / L = 0.5: kT/p * (1/(4 * 0.25) - 0.25 + 0.5) = kT/p * 1.25
    force = wlc_force(np.array([-1.0, 0.0, 50 * NM, 100 * NM]), contour_length=100 * NM,
                      persistence_length=0.4 * NM)
    assert force[0] == 0 and force[1] == 0
    assert force[2] == pytest.approx(KT_JOULE / (0.4 * NM) * 1.25)
    assert np.isinf(force[3])


def test_sequential_tethers_rupture_at_their_forces_in_order():
    z = np.linspace(0, 400 * NM, 4000)
    forces = np.array([100.0, 80.0]) * PN
    pulled, ruptures = tether_force(z, contour_lengths=np.array([100.0, 200.0]) * NM,
                                    persistence_lengths=np.array([0.4, 0.4]) * NM, forces=forces)
    assert len(ruptures) == 2 and ruptures[0] < ruptures[1]
    assert np.all(pulled <= 0)
    for index, force in zip(ruptures, forces, strict=True):
        assert -pulled[index] == pytest.approx(force, rel=0.05)  # last loaded sample
        assert -pulled[index + 1] < 0.5 * force                   # the force drops after it
    assert z[ruptures[0]] < 100 * NM and z[ruptures[1]] < 200 * NM
    assert np.all(pulled[ruptures[1] + 1:] == 0)


@pytest.mark.parametrize("label", range(len(AFM_CLASSES)))
def test_each_class_has_its_event_signature(label):
    config = AfmSimulationConfig(noise_pn=0.0, baseline_offset_pn=0.0,
                                 baseline_tilt_pn_per_100nm=0.0, interference_pn=0.0,
                                 adhesion_with_events=0.0)
    curve = simulate_retract_curve(label, config=config, rng=np.random.default_rng(label))
    z, force = curve["separation"], curve["force"]
    assert curve["class"] == AFM_CLASSES[label]
    assert force[0] > 0 and z[0] < 0                  # indentation first
    expected_events = {0: 0, 1: 1, 3: 0}.get(label)
    if expected_events is not None:
        assert len(curve["rupture_indices"]) == expected_events
    else:
        assert 2 <= len(curve["rupture_indices"]) <= 4
    pulled = force[z > 0]
    if label == 0:
        assert np.all(pulled == 0)
    else:
        assert pulled.min() < -30 * PN


def test_simulation_is_reproducible_and_balanced():
    a = simulate_curves(AfmSimulationConfig(**SMALL))
    b = simulate_curves(AfmSimulationConfig(**SMALL))
    assert [c["curve_id"] for c in a] == [f"sim-{i:05d}" for i in range(40)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["force"], y["force"])
    other = simulate_curves(AfmSimulationConfig(**{**SMALL, "seed": 4}))
    assert not np.array_equal(a[0]["force"], other[0]["force"])
    only = simulate_curves(AfmSimulationConfig(**{**SMALL, "class_balance": (0, 1, 0, 0)}))
    assert {c["label"] for c in only} == {1}


def test_noise_level_parameter_sets_the_far_region_noise():
    config = AfmSimulationConfig(n_curves=5, noise_pn=25.0, interference_pn=0.0,
                                 baseline_tilt_pn_per_100nm=0.0, class_balance=(1, 0, 0, 0))
    far = np.concatenate([np.diff(c["force"][-200:]) for c in simulate_curves(config)])
    assert np.std(far) / np.sqrt(2) == pytest.approx(25 * PN, rel=0.1)


@pytest.mark.parametrize("bad, match", [
    ({"class_balance": (1, 1, 1)}, "class_balance"),
    ({"multiple_events": (1, 3)}, "multiple_events"),
    ({"contour_length_nm": (40.0, 600.0)}, "max_distance_nm"),
    ({"noise_pn": -1.0}, "noise_pn"),
])
def test_bad_settings_fail_with_the_parameter_name(bad, match):
    with pytest.raises(ValueError, match=match):
        AfmSimulationConfig(**bad)
