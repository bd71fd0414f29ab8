"""What every task's inference bundle shares: the input error and the bundle check."""

from __future__ import annotations

from typing import Any

import numpy as np


class InputError(ValueError):
    """A new input cannot be used (wrong shape, dtype, channels, length); the message names
    the input (its file, or ``request`` for an array)."""


def image_stack(array: Any, *, source: str, what: str = "images") -> np.ndarray:
    """``[H, W]`` -> ``[1, H, W]`` and ``[M, 1, H, W]`` -> ``[M, H, W]``; other shapes as given
    (the caller checks them).

    Raises:
        InputError: naming ``source`` when ``array`` does not hold numbers.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise InputError(f"{source}: {what} must be numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        return array[None]
    if array.ndim == 4 and array.shape[1] == 1:
        return array[:, 0]
    return array


def require_task(bundle: dict[str, Any], task: str) -> None:
    """Raise ``ValueError`` when ``bundle`` is not an inference bundle of ``task``."""
    found = bundle.get("task") if isinstance(bundle, dict) else None
    if found != task:
        raise ValueError(f"expected an inference bundle of task '{task}', got task {found!r}")
