"""Which UCR/UEA sets the ``timeseries`` pipelines are built for: one top-level namespace
(``ucr_<Set>``, one Airflow task) per set of ``timeseries.ucr.datasets``.

Kedro builds the pipeline registry after the session's context (``session.run`` and
kedro-airflow's ``create`` both call ``load_context`` first), so
:class:`~contrastive_signals.hooks.timeseries_sets.TimeseriesSetsHook` records the run's
parameters (environment and ``--params`` included) here before ``register_pipelines`` reads
them. Without a context (kedro-viz, ``kedro registry``) the project's configuration is read
with ``KEDRO_ENV`` (default ``local``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

PREFIX = "ucr_"
_recorded: list[str] | None = None  # the last context's sets
_built_for: list[str] | None = None  # the sets the last registry was built for


def namespace_of(name: str) -> str:
    """``ucr_<name>`` with every character that is not a letter, digit or ``_`` as ``_``."""
    return PREFIX + re.sub(r"\W", "_", name, flags=re.ASCII)


def set_namespaces(names: list[str]) -> dict[str, str]:
    """``{set name: namespace}`` in the list's order; two sets with one namespace are refused."""
    namespaces = {name: namespace_of(name) for name in names}
    if len(set(namespaces.values())) != len(namespaces):
        raise ValueError(f"timeseries.ucr.datasets: {names} give the same namespace twice "
                         f"({sorted(namespaces.values())}); rename a set folder")
    return namespaces


def datasets_of(params: dict[str, Any]) -> list[str]:
    """``timeseries.ucr.datasets`` of a parameters dict, a single name as a list."""
    value = (((params or {}).get("timeseries") or {}).get("ucr") or {}).get("datasets") or []
    return [value] if isinstance(value, str) else [str(name) for name in value]


def record(params: dict[str, Any]) -> bool:
    """Remember the run's sets (the hook calls this when the context is created); ``True``
    when a registry was already built for other sets (then it must be built again)."""
    global _recorded
    _recorded = datasets_of(params)
    return _built_for is not None and _built_for != _recorded


def _configured(project_path: Path) -> list[str]:
    from kedro.config import OmegaConfigLoader
    from kedro.framework.project import settings

    loader = OmegaConfigLoader(str(project_path / settings.CONF_SOURCE),
                               env=os.environ.get("KEDRO_ENV") or "local",
                               **settings.CONFIG_LOADER_ARGS)
    return datasets_of(loader["parameters"])


def registered_sets() -> list[str]:
    """The run's sets if a context recorded them, else the project's configuration's (the
    registry calls this when it builds the pipelines)."""
    global _built_for
    if _recorded is not None:
        _built_for = list(_recorded)
    else:
        from kedro.utils import find_kedro_project

        project = find_kedro_project(Path.cwd())
        _built_for = _configured(project) if project else []
    return list(_built_for)
