"""`kedro run --pipeline=ctc --env=test` (synthetic CTC sequences and the sleep stager) from
the command line: the report equals the recorded one (behaviour kept across refactors)."""

import pytest

from tests.e2e.golden import assert_matches_golden
from tests.e2e.project import project_after_run

pytestmark = pytest.mark.slow


def test_report_matches_golden(tmp_path):
    project = project_after_run(tmp_path, "--pipeline=ctc", "--env=test")
    assert_matches_golden(project, "ctc")
