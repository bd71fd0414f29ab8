"""Shared test setup: no telemetry, no network, quiet progress bars."""

import os

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # set before torch loads OpenMP

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny models: one thread is fastest there, and on a
    busy shared machine it avoids OpenMP threads spin-waiting for each other (steps 10-50x
    slower). Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_digit_splits():
    """A small, deterministic split of the embedded digits: 20 train / 10 val / 20 test per
    class is too many for speed, so 6 / 2 / 4 per class."""
    from contrastive_signals.data.digits import embedded_digits

    images, labels = embedded_digits()
    parts = {"train": [], "val": [], "test": []}
    for digit in range(10):
        idx = torch.nonzero(labels == digit).flatten()
        parts["train"].append(idx[:6])
        parts["val"].append(idx[6:8])
        parts["test"].append(idx[8:12])
    return {
        part: {"images": images[torch.cat(i)], "labels": labels[torch.cat(i)]}
        for part, i in parts.items()
    }


# Fixtures that are cheap to build again on every pytest-xdist worker (`make test` runs the suite
# on several workers): the tests using them need not share a worker.
CHEAP_SHARED_FIXTURES = {"one_torch_thread", "browser"}


def _worker_group(item: pytest.Item) -> str | None:
    """The group of tests that must run on one xdist worker: the users of an expensive
    session-wide fixture (e.g. ``browsed_project``, one `kedro run`) by its name, and the tests
    of a module with an expensive module-wide fixture by the module; others go anywhere."""
    group = None
    for name in item.fixturenames:
        for definition in item._fixtureinfo.name2fixturedefs.get(name, ()):
            if name in CHEAP_SHARED_FIXTURES or not definition.baseid.startswith("tests"):
                continue  # pytest's and plugins' own fixtures have an empty base id
            if definition.scope == "session":
                return name
            if definition.scope in ("package", "module", "class"):
                group = item.module.__name__
    return group


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's ``--dist loadgroup``, keep each expensive shared fixture to one
    worker so that it is built once, as in a serial run."""
    if config.getoption("dist", "no") != "loadgroup":
        return
    for item in items:
        group = _worker_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
