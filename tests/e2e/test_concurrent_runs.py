"""Two different runs at once in one project each report their own figures (issue 14)."""

from __future__ import annotations

import pytest

from tests.e2e.concurrent import concurrent_figures, solo_figures, wrong_figures

pytestmark = pytest.mark.slow


def test_two_runs_at_once_report_what_each_computes_alone(tmp_path):
    solo = solo_figures(tmp_path)
    assert solo["A"][0] != solo["B"][0], "the two runs must differ for the test to mean anything"
    assert wrong_figures(solo, concurrent_figures(tmp_path / "together")) == []
