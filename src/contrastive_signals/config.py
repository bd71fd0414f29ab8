"""Typed parameters: YAML dicts become frozen dataclasses, so a bad parameter fails before
training starts and the error names the parameter by its full path."""

from __future__ import annotations

import dataclasses
import math
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


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit the type hint ``hint`` (``None`` when it fits). Checks what
    YAML can get wrong: integers (not 2.5, not booleans), finite numbers (not strings, not
    NaN), booleans (not the string "nope"), strings, ``Literal`` choices, optional values,
    and the items of ``tuple[X, ...]`` / ``list[X]``; other hints are not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return None
    if origin is typing.Literal:
        return None if value in args else f"must be one of {list(args)}, got {value!r}"
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        if value is None and type(None) in args:
            return None
        problems = [type_problem(value, arm) for arm in args if arm is not type(None)]
        if any(problem is None for problem in problems):
            return None
        return (problems[0] if len(problems) == 1 else
                f"must be {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if hint is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if hint is int:
        return (None if isinstance(value, int) and not isinstance(value, bool)
                else f"must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        return None if math.isfinite(value) else f"must be a finite number, got {value!r}"
    if hint is str:
        return None if isinstance(value, str) else f"must be a string, got {value!r}"
    if origin in (tuple, list) and isinstance(value, (tuple, list)):
        item_hint = args[0] if args and (origin is list or args[-1] is Ellipsis) else None
        for index, item in enumerate(value if item_hint is not None else ()):
            problem = type_problem(item, item_hint)
            if problem is not None:
                return f"item {index} {problem}"
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
        else:
            problem = type_problem(value, hints[name])
            if problem is not None:
                raise ParameterError(f"{path}.{name} {problem}")
            if isinstance(value, list):
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
