"""Fixtures shared by the end-to-end tests: one `kedro run --env=test` for the browser tests,
one `kedro run --pipeline=timeseries --env=test`, and one headless Chromium."""

from __future__ import annotations

import pytest

from tests.e2e.project import project_after_run
from tests.e2e.servers import chromium_missing_reason, launch_chromium


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; the tests using it are skipped, with the
    reason, where there is no Chromium (never passed silently)."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def browsed_project(tmp_path_factory):
    """A project copy after one `kedro run --env=test`: data/ holds every dataset (plots
    included) and mlflow.db + mlruns/ hold one finished MLflow run.

    Browser tests request it after ``browser`` so that a missing Chromium skips before the
    run starts; tests/e2e/test_kedro_run.py checks its outputs and MLflow run."""
    return project_after_run(tmp_path_factory.mktemp("browsed_project"), "--env=test")


@pytest.fixture(scope="session")
def timeseries_project(tmp_path_factory):
    """A project copy after one `kedro run --pipeline=timeseries --env=test` (the UCR/UEA sets,
    MNIST-1D and the wav2vec label-efficiency test in one run); checked by
    tests/e2e/test_timeseries_run.py and tests/e2e/test_wav2vec_run.py."""
    return project_after_run(tmp_path_factory.mktemp("timeseries_project"),
                             "--pipeline=timeseries", "--env=test")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
