"""The end of a sweep: the parent run gets the best trial, Optuna's plots, and the test
figures of the best configuration beside the default configuration's on the same seeds."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from contrastive_signals.metrics.seeds import seed_spread

logger = logging.getLogger(__name__)

PLOTS = ("optimization_history", "param_importances", "parallel_coordinate")


def optuna_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optuna's optimisation history, parameter importances and parallel coordinates as PNG
    (matplotlib) and HTML (plotly, when installed; one plotly.min.js beside them). A plot Optuna
    cannot draw yet (importances need two finished trials) is left out with a log line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_mpl

    written = []
    for name in PLOTS:
        try:
            axes = getattr(optuna_mpl, f"plot_{name}")(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            path = folder / f"{name}.png"
            figure.savefig(path, dpi=110)
            plt.close(figure)
            written.append(path)
        except Exception as error:  # noqa: BLE001 - a missing plot is not a failed sweep
            logger.warning("optuna plot %s not drawn: %s", name, error)
            continue
        try:
            import optuna.visualization as optuna_plotly

            html = folder / f"{name}.html"
            getattr(optuna_plotly, f"plot_{name}")(study).write_html(
                html, include_plotlyjs="directory")
            written.append(html)
        except Exception as error:  # noqa: BLE001 - plotly is optional
            logger.info("optuna plot %s as HTML not written: %s", name, error)
    return written


def is_default(project, spec, params: dict[str, Any]) -> bool:
    """Whether ``params`` (dotted path -> value) are the project's own values (with the
    sweep's ``fixed`` values on top)."""
    from contrastive_signals.sweep.checks import get_path

    defaults = project.config("parameters")
    return all(spec.fixed.get(path, get_path(defaults, path)) == value
               for path, value in params.items())


def final_report(project, spec, best_params: dict[str, Any], run_all: Callable
                 ) -> dict[str, Any]:
    """The test figures of ``spec.report.metrics`` for the best and the default configuration,
    each run once per seed (every ``seed_parameters`` path set to the seed); once only when
    the best configuration is the default one. ``run_all`` runs a list of assignments (dotted
    path -> value) and returns their outcomes in order (one after the other, or in parallel
    processes)."""
    config = spec.report
    same = is_default(project, spec, best_params)
    labels = ("best",) if same else ("best", "default")
    jobs = [(label, seed) for seed in config.seeds for label in labels]
    assignments = [{**(best_params if label == "best" else {}),
                    **dict.fromkeys(config.seed_parameters, seed)} for label, seed in jobs]
    rows: dict[str, dict[str, list[float]]] = {label: {} for label in labels}
    for (label, seed), outcome in zip(jobs, run_all(assignments), strict=True):
        if outcome.state != TrialState.COMPLETE:
            raise RuntimeError(f"sweep {spec.name}: the {label} configuration with seed "
                               f"{seed} failed: {outcome.error}")
        for metric in config.metrics:
            rows[label].setdefault(metric, []).append(outcome.figures[metric])
        logger.info("sweep %s report: %s seed %d %s", spec.name, label, seed,
                    {m: outcome.figures[m] for m in config.metrics})
    rows.setdefault("default", rows["best"])
    report = {"sweep": spec.name, "seeds": list(config.seeds), "best_is_default": same,
              "seed_parameters": list(config.seed_parameters), "best_params": best_params,
              "metrics": {}}
    for metric in config.metrics:
        best, default = seed_spread(rows["best"][metric]), seed_spread(rows["default"][metric])
        spread = max(best["std"], default["std"])
        report["metrics"][metric] = {
            "best": best, "default": default, "difference": best["mean"] - default["mean"],
            "larger_than_seed_spread": abs(best["mean"] - default["mean"]) > spread}
    return report


def finish_parent(project, spec, study: optuna.Study, tracking, parent: str, summary, *,
                  report: bool, run_all: Callable) -> dict[str, Any] | None:
    """Write the best trial, the plots and (``report``) the final report to the parent run and
    ``data/08_reporting/sweep_<name>.json``; once per study size (the first process to find
    every trial finished does it)."""
    from contrastive_signals.sweep.runner import storage_url, study_lock

    with study_lock(storage_url(project, spec)):
        fresh = optuna.load_study(study_name=spec.study, storage=study._storage)
        if fresh.user_attrs.get("finished_with") == summary.trials:
            return None
        fresh.set_user_attr("finished_with", summary.trials)
    client = tracking.client
    tags = {"sweep.trials": summary.trials, "sweep.complete": summary.complete,
            "sweep.pruned": summary.pruned, "sweep.failed": summary.failed}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        tags.update({"best.trial": best.number,
                     "best.run_id": best.user_attrs.get("mlflow_run_id", ""),
                     **{f"best.{k}": json.dumps(v) for k, v in summary.best_params.items()}})
        client.log_metric(parent, f"best.{spec.objective.metric}", best.value)
    for key, value in tags.items():
        client.set_tag(parent, key, str(value))
    with tempfile.TemporaryDirectory(prefix="sweep-plots-") as tmp:
        if complete:
            optuna_plots(study, Path(tmp))
            client.log_artifacts(parent, tmp, "optuna")
    result = None
    if report and spec.report is not None and complete:
        result = write_report(project, spec, client, parent, summary.best_params, run_all)
    client.set_terminated(parent, status="FINISHED")
    return result


def write_report(project, spec, client, parent: str, best_params: dict[str, Any],
                 run_all: Callable) -> dict[str, Any]:
    """Run :func:`final_report`, write ``data/08_reporting/sweep_<name>.json`` and log it and
    its means and spreads (``report.{best,default}.<metric>[.std]``) to the parent run."""
    result = final_report(project, spec, best_params, run_all)
    path = project.path / "data" / "08_reporting" / f"sweep_{spec.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    client.log_artifact(parent, str(path), "report")
    for metric, row in result["metrics"].items():
        for label in ("best", "default"):
            client.log_metric(parent, f"report.{label}.{metric}", row[label]["mean"])
            client.log_metric(parent, f"report.{label}.{metric}.std", row[label]["std"])
    return result
