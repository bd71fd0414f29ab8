"""A sweep checked against the project before any trial: its pipeline and nodes exist, every
swept, fixed and seed parameter path exists in the project's parameters, both ends of each
range (every choice) pass the project's own parameter checks, and its figures are ones the
pipeline reports (validation figures for the search, test figures for the report)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from contrastive_signals.pipelines.parameter_checks import parameter_problems
from contrastive_signals.sweep.figures import pipeline_figures
from contrastive_signals.sweep.spec import SweepSpec

_MISSING = object()


def get_path(values: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` of nested ``values`` (``_MISSING`` when absent)."""
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def nested(assignments: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b.c": 1, "a.d": 2}`` -> ``{"a": {"b": {"c": 1}, "d": 2}}`` (Kedro's runtime
    parameters, merged key by key into the project's)."""
    tree: dict[str, Any] = {}
    for path, value in assignments.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _known(names: Iterable[str], limit: int = 12) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _value_problems(parameters: Mapping[str, Any], blocks: Iterable[str], path: str,
                    value: Any) -> list[str]:
    """The project's parameter-check messages of every block the pipeline's nodes read
    (``blocks``: their ``params:`` keys) that holds ``path``, with ``value`` at ``path``."""
    problems = []
    for key in blocks:
        if not path.startswith(f"{key}.") or get_path(parameters, key) is _MISSING:
            continue
        block = copy.deepcopy(get_path(parameters, key))
        node = block
        *parents, leaf = path[len(key) + 1:].split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
        problems += [p for p in parameter_problems([(key, block)]) if p not in problems]
    return problems


def _type_problem(current: Any, value: Any) -> str | None:
    if isinstance(current, bool) != isinstance(value, bool):
        return f"the project's value is {current!r}: {value!r} is not of its type"
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float):
        return f"the project's value {current!r} is an integer: use integer ends (or choices)"
    return None


def _parameter_problems(spec: SweepSpec, parameters: Mapping[str, Any], blocks: list[str]
                        ) -> list[str]:
    where = f"sweep.{spec.name}"
    problems = []
    for path, space in spec.parameters.items():
        current = get_path(parameters, path)
        entry = f"{where}.parameters.{path}"
        if current is _MISSING:
            problems.append(f"{entry}: unknown parameter path '{path}' (not in the project's "
                            "parameters)")
            continue
        for value in space.extremes():
            problem = _type_problem(current, value)
            problems += [f"{entry}: {problem}"] if problem else [
                f"{entry}: value {value!r} fails the project's check: {message}"
                for message in _value_problems(parameters, blocks, path, value)]
    for field, paths in (("fixed", spec.fixed), ("report.seed_parameters",
                                                  spec.report.seed_parameters if spec.report
                                                  else ())):
        problems += [f"{where}.{field}: unknown parameter path '{path}'" for path in paths
                     if get_path(parameters, path) is _MISSING]
    for index, entry in enumerate(spec.enqueue):
        unknown = sorted(set(entry) - set(spec.parameters))
        if unknown:
            problems.append(f"{where}.enqueue[{index}]: {unknown} are not swept parameters")
    return problems


def _figure_problems(spec: SweepSpec) -> list[str]:
    where = f"sweep.{spec.name}"
    figures = pipeline_figures(spec.pipeline)
    if figures is None:
        return [f"{where}.pipeline: '{spec.pipeline}' declares no figures for sweeps yet "
                "(sweep/figures.py PIPELINE_FIGURES)"]
    problems = []
    if spec.objective.metric not in figures.objectives:
        problems.append(f"{where}.objective.metric: unknown metric '{spec.objective.metric}' for "
                        f"pipeline {spec.pipeline}; its validation figures: "
                        f"{_known(figures.objectives)}")
    if spec.pruning.metric is not None and spec.pruning.metric not in figures.histories:
        problems.append(f"{where}.pruning.metric: unknown per-epoch metric "
                        f"'{spec.pruning.metric}'; known: {_known(figures.histories)}")
    for metric in spec.report.metrics if spec.report else ():
        if metric not in figures.test | figures.validation:
            problems.append(f"{where}.report.metrics: unknown metric '{metric}'; test figures: "
                            f"{_known(figures.test)}")
    return problems


def sweep_problems(spec: SweepSpec, parameters: Mapping[str, Any],
                   pipelines: Mapping[str, Any]) -> list[str]:
    """Every problem of ``spec`` against the project's ``parameters`` (the merged parameters
    of the environment) and registered ``pipelines``; each names its entry."""
    where = f"sweep.{spec.name}"
    if spec.pipeline not in pipelines:
        return [f"{where}.pipeline: unknown pipeline '{spec.pipeline}'; registered: "
                f"{_known(pipelines)}"]
    nodes = pipelines[spec.pipeline].nodes
    node_names = {node.name for node in nodes}
    blocks = sorted({name.removeprefix("params:") for node in nodes for name in node.inputs
                     if name.startswith("params:")})
    problems = [f"{where}.to_nodes: no node '{name}' in pipeline {spec.pipeline}"
                for name in spec.to_nodes if name not in node_names]
    return problems + _parameter_problems(spec, parameters, blocks) + _figure_problems(spec)
