"""What every task's inference bundle shares: the input error and the bundle check."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """A new input cannot be used (wrong shape, dtype, channels, length); the message names
    the input (its file, or ``request`` for an array)."""


def require_task(bundle: dict[str, Any], task: str) -> None:
    """Raise ``ValueError`` when ``bundle`` is not an inference bundle of ``task``."""
    found = bundle.get("task") if isinstance(bundle, dict) else None
    if found != task:
        raise ValueError(f"expected an inference bundle of task '{task}', got task {found!r}")
