"""Wiring helpers shared by the pipeline definitions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial, update_wrapper
from typing import Any


def bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    """``func`` with keyword arguments fixed, keeping its name and docstring: one node
    function serves several namespaces (``name="simclr"``, ``model="cnn"``), and Kedro and
    kedro-viz still show the function's own name."""
    return update_wrapper(partial(func, **kwargs), func)
