"""The ``timeseries`` pipelines follow the run's UCR/UEA sets (one namespace ``ucr_<Set>`` per
set, :mod:`contrastive_signals.pipelines.timeseries.sets`):

- ``after_context_created`` (first of the project's hooks) records the run's parameters,
  ``--env`` and ``--params`` included, before Kedro builds the pipeline registry (and drops
  a registry this process built earlier for other sets);
- ``before_pipeline_run`` refuses, before the first node, a pipeline whose ``ucr_*``
  namespaces are not the run's ``timeseries.ucr.datasets`` (a registry built for other
  sets, e.g. by a tool that read the pipelines before the context was created).
"""

from __future__ import annotations

from typing import Any

from kedro.framework import project
from kedro.framework.hooks import hook_impl

from contrastive_signals.config import ParameterError
from contrastive_signals.hooks.run_status import end_active_runs
from contrastive_signals.pipelines.timeseries import sets

GATHER_NODE = "timeseries.gather_ucr_sets"
UCR_PARAMS = "params:timeseries.ucr"


def set_problem(pipeline, datasets: list[str]) -> str | None:
    """Why ``pipeline`` (or a slice of it, e.g. one Airflow task) does not run the UCR/UEA
    sets ``datasets``, or ``None``: its ``ucr_*`` namespaces must be sets of the run, and the
    gather node (whose inputs name the sets it was built for) must gather all of them."""
    expected = set(sets.set_namespaces(datasets).values())
    present = {node.namespace.split(".")[0] for node in pipeline.nodes
               if node.namespace and node.namespace.startswith(sets.PREFIX)}
    gather = next((node for node in pipeline.nodes if node.name == GATHER_NODE), None)
    gathered = {name.split(".")[0] for name in gather.inputs} if gather else set()
    if present - expected or (gather is not None and gathered != expected):
        return (f"the pipeline was built for the UCR/UEA sets {sorted(present | gathered)} but "
                f"this run's timeseries.ucr.datasets gives {sorted(expected)}: build the "
                "pipelines after the session's context (kedro run, kedro airflow create) or "
                "generate the DAG again with this run's --env")
    return None


class TimeseriesSetsHook:
    """Records the run's parameters for the pipeline registry and checks the built sets."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        if sets.record(context.params):
            # a registry built earlier in this process for other sets: build it again
            project.pipelines.configure(f"{project.PACKAGE_NAME}.pipeline_registry")

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if not any(UCR_PARAMS in node.inputs for node in pipeline.nodes):
            return
        problem = set_problem(pipeline, sets.datasets_of(
            {"timeseries": {"ucr": catalog.load(UCR_PARAMS)}}))
        if problem:
            end_active_runs("FAILED", failure="parameter check")
            raise ParameterError(problem)
