"""The base of hooks that look at the datasets the run saves."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl


class CatalogHook:
    """Keeps the run's catalog, so that ``after_dataset_saved`` can reach the dataset object
    (the catalog holds one object per name for the whole run)."""

    def __init__(self) -> None:
        self._catalog = None

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog

    def saved_dataset(self, dataset_name: str) -> Any | None:
        """The dataset object just saved under ``dataset_name`` (``None`` before the catalog
        exists)."""
        return None if self._catalog is None else self._catalog.get(dataset_name)
