"""Per-epoch validation values handed to whoever watches the training (a hyperparameter
search's pruner, a dashboard), without the loop knowing who that is.

The watcher installs an *observer* around the code that trains (:func:`observing_epochs`);
:func:`~contrastive_signals.training.fit.fit` calls :func:`report_epoch` after each epoch's
validation with the fit's name, the 0-based epoch and the validation values. An observer that
raises stops the training: the exception leaves ``fit`` (checkpoints are released as on any
error) and the caller decides what it means (a pruned trial, say). Nothing is observed outside
the ``with`` block; nested blocks see only the innermost observer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

EpochObserver = Callable[[str, int, dict[str, float]], None]
"""``(fit name, epoch, {validation name: value}) -> None``; may raise to stop training."""

_OBSERVER: ContextVar[EpochObserver | None] = ContextVar("epoch_observer", default=None)


@contextlib.contextmanager
def observing_epochs(observer: EpochObserver) -> Iterator[None]:
    """Call ``observer`` after every validated epoch of every fit inside the block."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def report_epoch(name: str, epoch: int, values: dict[str, float]) -> None:
    """Hand epoch ``epoch``'s validation ``values`` of fit ``name`` to the observer, if any."""
    observer = _OBSERVER.get()
    if observer is not None and values:
        observer(name, epoch, dict(values))


def is_observed() -> bool:
    """Whether an observer watches the fits of this context (it does not reach other
    processes: code that could train in workers trains here instead)."""
    return _OBSERVER.get() is not None
