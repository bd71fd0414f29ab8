"""Typed parameters: YAML dicts become frozen dataclasses, so a bad parameter fails before
training starts and the error names the parameter by its full path."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ParameterError(ValueError):
    """A parameter is unknown, missing or out of range; the message names it."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _nested_dataclass(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (``X`` or ``X | None``), if any."""
    if _is_dataclass_type(tp):
        return tp
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and _is_dataclass_type(inner[0]):
            return inner[0]
    return None


def from_params(cls: type[T], values: dict[str, Any] | None, *, path: str) -> T:
    """Build dataclass ``cls`` from ``values``, recursing into nested dataclass fields.

    Raises:
        ParameterError: for unknown or missing keys, and for any ``ValueError`` raised by the
            dataclass's own validation, prefixed with the parameter path (e.g.
            ``pretraining.simclr.fit``).
    """
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParameterError(
            f"{path}: unknown parameter(s) {unknown}; valid parameters are {sorted(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        nested = _nested_dataclass(hints[name])
        if nested is not None and isinstance(value, dict):
            value = from_params(nested, value, path=f"{path}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    missing = [
        name for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParameterError(f"{path}: missing required parameter(s) {missing}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as error:
        raise ParameterError(f"{path}: {error}") from error


def require_at_least(params: Any, names: typing.Iterable[str], minimum: float) -> None:
    """Raise ``ValueError`` naming the first of ``params``' fields ``names`` below ``minimum``
    (dataclasses call it from ``__post_init__``; ``from_params`` adds the parameter path)."""
    for name in names:
        if not getattr(params, name) >= minimum:  # also rejects NaN
            raise ValueError(f"{name} must be >= {minimum}, got {getattr(params, name)}")


def require_positive(params: Any, names: typing.Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first of ``params``' fields ``names`` that is not > 0."""
    for name in names:
        if not getattr(params, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(params, name)}")


def require_bool(params: Any, names: typing.Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first of ``params``' fields ``names`` that is not a
    bool (YAML ``true``/``false``; a string such as ``"no"`` would otherwise read as true)."""
    for name in names:
        if not isinstance(getattr(params, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(params, name)!r}")


def require_probability(params: Any, names: typing.Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first of ``params``' fields ``names`` outside [0, 1]."""
    for name in names:
        if not 0.0 <= getattr(params, name) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {getattr(params, name)}")
