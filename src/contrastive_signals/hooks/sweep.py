"""A sweep's trial inside a Kedro run: the figures the run saves are captured for the sweep,
and kedro-mlflow stays out of the way (the sweep logs each trial as a child run of the study's
parent run, with only the swept parameters; see ``sweep/runner.py``).

Outside a sweep (no :func:`capturing_trial` block around the session) the hook does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kedro.framework.hooks import hook_impl

from contrastive_signals.hooks.catalog import CatalogHook
from contrastive_signals.sweep.figures import output_figures


@dataclass
class TrialCapture:
    """What one trial's Kedro run produced: figures of its saved outputs by stable name."""

    pipeline: str
    figures: dict[str, float] = field(default_factory=dict)


_ACTIVE: list[TrialCapture] = []


@contextlib.contextmanager
def capturing_trial(pipeline: str) -> Iterator[TrialCapture]:
    """Capture the figures of the Kedro run of ``pipeline`` started inside the block."""
    capture = TrialCapture(pipeline)
    _ACTIVE.append(capture)
    try:
        yield capture
    finally:
        _ACTIVE.remove(capture)


class SweepTrialHook(CatalogHook):
    """Captures a trial's figures and turns kedro-mlflow's own run off during a trial."""

    @hook_impl(trylast=True)
    def after_context_created(self, context) -> None:
        """After kedro-mlflow read ``mlflow.yml``: no run of its own for a trial's pipeline."""
        config = getattr(context, "mlflow", None)
        if _ACTIVE and config is not None:
            disabled = config.tracking.disable_tracking.pipelines
            if _ACTIVE[-1].pipeline not in disabled:
                disabled.append(_ACTIVE[-1].pipeline)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        """kedro-mlflow switches its datasets off for a disabled pipeline, but not those made
        from a dataset factory (``{model}.history_metrics``), whose save would start a stray
        top-level run: they are switched off here."""
        dataset = self.saved_dataset(dataset_name) if _ACTIVE else None
        if dataset is not None and type(dataset).__name__.startswith("Mlflow"):
            dataset._logging_activated = False

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if _ACTIVE:
            _ACTIVE[-1].figures.update(output_figures(dataset_name, data))
