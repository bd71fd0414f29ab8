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


def model_choice(choice: Any, *, what: str = "model") -> tuple[str, str]:
    """The parameter that picks a trained model, parsed (no store is asked).

    ``latest`` (or None): the newest model logged; an integer or digit string ``>= 1``: that
    version of the registered model; text with ``:/`` (``models:/sleep@champion``,
    ``models:/<model id>``, ``runs:/<run id>/sleep_inference``): an MLflow model URI.

    Returns:
        ``("latest", "latest")``, ``("version", "<n>")`` or ``("uri", "<uri>")``.

    Raises:
        ValueError: naming ``what`` for anything else (booleans, 0, other words, lists).
    """
    if choice is None:
        return "latest", "latest"
    text = str(choice).strip() if isinstance(choice, (str, int)) and not isinstance(
        choice, bool) else None
    if text == "latest":
        return "latest", text
    if text is not None and text.isdigit() and int(text) >= 1:
        return "version", str(int(text))
    if text is not None and ":/" in text and text.split(":/", 1)[1].strip("/"):
        return "uri", text
    raise ValueError(f"{what} must be 'latest', a registered version number (>= 1) or an "
                     f"MLflow model URI such as models:/<name>@champion, got {choice!r}")
