"""The one spread helper every report uses."""

import statistics

import pytest

from contrastive_signals.metrics.seeds import mean_and_std, seed_spread


def test_population_and_sample_std_match_the_standard_library():
    values = [0.81, 0.86, 0.79, 0.90, 0.84]
    mean, std = mean_and_std(values)
    assert mean == pytest.approx(statistics.fmean(values), abs=1e-15)
    assert std == pytest.approx(statistics.pstdev(values), abs=1e-15)
    assert mean_and_std(values, ddof=1)[1] == pytest.approx(statistics.stdev(values), abs=1e-15)


def test_one_value_has_no_spread_whatever_the_ddof():
    assert mean_and_std([0.5], ddof=1) == (0.5, 0.0)
    assert seed_spread(iter([2])) == {"mean": 2.0, "std": 0.0, "values": [2.0]}


def test_spread_keeps_the_values_in_order_as_floats():
    spread = seed_spread((3, 1, 2))
    assert spread["values"] == [3.0, 1.0, 2.0]
    assert spread["mean"] == 2.0
    assert spread["std"] == pytest.approx((2 / 3) ** 0.5)


def test_no_values_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        mean_and_std([])
