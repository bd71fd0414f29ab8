"""Which figures a sweep may optimise, prune on and report, by their stable names.

A *validation figure* is one whose last dotted part starts with ``val_``
(``simclr.linear_probe_10pc.val_acc``, ``simclr.val_knn_acc``, ``ctc_cnn.val_cer``): it is
computed on the validation split. Every other figure of a pipeline is a test-split figure, and
a search must never see one (:func:`leakage_problem`): test figures are reported once, after
the search (``report:`` of the sweep).

Each sweepable pipeline declares its figures here (:data:`PIPELINE_FIGURES`), so that a sweep
file naming an unknown figure fails before any trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VALIDATION_PREFIX = "val_"


def is_validation_figure(name: str) -> bool:
    """Whether ``name`` is computed on the validation split (its last part starts ``val_``)."""
    return name.rsplit(".", 1)[-1].startswith(VALIDATION_PREFIX)


def leakage_problem(name: str) -> str | None:
    """Why figure ``name`` may not guide a search (``None`` when it may)."""
    if is_validation_figure(name):
        return None
    return (f"'{name}' is a test-split figure: a search must not see the test split (it is "
            f"reported once, after the search, under report:). Optimise a validation figure, "
            f"whose last part starts with '{VALIDATION_PREFIX}' (e.g. "
            "'simclr.linear_probe_10pc.val_acc', 'simclr.val_knn_acc', 'ctc_cnn.val_cer')")


@dataclass(frozen=True)
class PipelineFigures:
    """The figures of one pipeline: final validation figures, per-epoch validation histories
    (``<fit name>.<key>``) and test figures."""

    validation: frozenset[str]
    histories: frozenset[str]
    test: frozenset[str]

    @property
    def objectives(self) -> frozenset[str]:
        return self.validation | self.histories


def _digits() -> PipelineFigures:
    from contrastive_signals.pipelines.evaluation.nodes import METRIC_COLUMNS, VALIDATION_PROBE
    from contrastive_signals.pipelines.evaluation.pipeline import (
        CLASSIFIERS,
        ENCODERS,
        TRAINED_ENCODERS,
    )

    return PipelineFigures(
        validation=frozenset(f"{e}.{VALIDATION_PROBE}" for e in ENCODERS),
        histories=frozenset({f"{m}.val_knn_acc" for m in TRAINED_ENCODERS if m not in CLASSIFIERS}
                            | {f"{c}.{k}" for c in CLASSIFIERS for k in ("val_acc", "val_loss")}),
        test=frozenset({f"{e}.{m}" for e in ENCODERS for m in METRIC_COLUMNS if m != "test.acc"}
                       | {f"{c}.test.acc" for c in CLASSIFIERS}))


def _ctc() -> PipelineFigures:
    from contrastive_signals.pipelines.ctc.nodes import MODELS

    names = [f"ctc_{model}" for model in MODELS]
    return PipelineFigures(
        validation=frozenset(),
        histories=frozenset(f"{n}.{k}" for n in names for k in ("val_cer", "val_loss")),
        test=frozenset(f"{n}.{k}" for n in names for k in ("cer", "cer_beam", "deletions",
                                                              "insertions", "substitutions")))


PIPELINE_FIGURES = {"__default__": _digits, "ctc": _ctc}


def pipeline_figures(pipeline: str) -> PipelineFigures | None:
    """The declared figures of ``pipeline`` (``None``: not sweepable yet)."""
    make = PIPELINE_FIGURES.get(pipeline)
    return make() if make is not None else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def output_figures(dataset_name: str, data: Any) -> dict[str, float]:
    """The figures in a saved pipeline output, by their stable names: a flat report
    ``{name: number}`` as it is; a model's scores ``{"metrics": {...}}`` saved as
    ``<namespace>.<output>`` as ``<model>.<metric>``, the model being the namespace's last part
    (``evaluation.simclr.probe_scores`` -> ``simclr.*``, ``ctc_cnn.test_scores`` ->
    ``ctc_cnn.*``). Anything else holds no figure."""
    if not isinstance(data, dict) or not data:
        return {}
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and "." in dataset_name:
        model = dataset_name.rsplit(".", 1)[0].rsplit(".", 1)[-1]
        return {f"{model}.{k}": float(v) for k, v in metrics.items() if _number(v)}
    if all(isinstance(k, str) and _number(v) for k, v in data.items()):
        return {k: float(v) for k, v in data.items()}
    return {}
