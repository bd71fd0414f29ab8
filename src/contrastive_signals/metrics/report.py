"""Results tables and flat metric names (``<model>.<metric>``) for reports and tracking."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

MISSING = "–"  # en dash: a metric the model does not have


def results_table(
    rows: Mapping[str, Mapping[str, float]], *, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per model, one column per metric.

    Args:
        rows: ``{model: {metric: value}}``; models keep their insertion order.
        columns: metric order to show first; metrics not listed follow in sorted order, so
            nothing is dropped and the order is the same on every run. Missing values are NaN.

    Returns:
        float DataFrame, index ``model`` (the model names), columns = metric names.
    """
    present = {metric for metrics in rows.values() for metric in metrics}
    leading = list(dict.fromkeys(columns or []))
    order = leading + sorted(present - set(leading))
    data = [
        [np.nan if (v := metrics.get(c)) is None else float(v) for c in order]
        for metrics in rows.values()
    ]
    index = pd.Index(list(rows), name="model")
    return pd.DataFrame(data, index=index, columns=order, dtype=float)


def _cell(value: object, float_format: str) -> str:
    """Markdown text of one cell: formatted number, dash for missing, pipes escaped."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return MISSING
    if isinstance(value, float | np.floating):
        return format(float(value), float_format)
    return str(value).replace("|", "\\|")


def to_markdown(table: pd.DataFrame, *, float_format: str = ".4f") -> str:
    """Render ``table`` as a GitHub-flavoured markdown table (no ``tabulate`` needed).

    The index becomes the first column (headed by its name); numeric columns are
    right-aligned; NaN and None are shown as ``–``.

    Returns:
        The table as lines joined by ``\\n``, ending without a newline.
    """
    header = [str(table.index.name or "")] + [str(c) for c in table.columns]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    align = [":---"] + ["---:" if is_num else ":---" for is_num in numeric]
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    for name, row in zip(table.index, table.itertuples(index=False, name=None), strict=True):
        cells = [_cell(name, float_format)] + [_cell(v, float_format) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flatten_metrics(rows: Mapping[str, Mapping[str, float | None]]) -> dict[str, float]:
    """Flatten ``{model: {metric: value}}`` to ``{"<model>.<metric>": value}``.

    None, NaN and ±inf are skipped: they are not numbers in JSON, and a missing name reads
    more clearly than a placeholder value.
    """
    flat = {}
    for model, metrics in rows.items():
        for metric, value in metrics.items():
            if value is None or not math.isfinite(float(value)):
                continue
            flat[f"{model}.{metric}"] = float(value)
    return flat


def finite_report(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` as a flat report sorted by name, values as floats; a ``ValueError`` naming
    every metric that is not finite (NaN or inf)."""
    report = {name: float(value) for name, value in sorted(metrics.items())}
    bad = [name for name, value in report.items() if not math.isfinite(value)]
    if bad:
        raise ValueError(f"non-finite metrics: {bad}")
    return report


def merge_reports(*reports: Mapping[str, float]) -> dict[str, float]:
    """One flat report ``{name: float}`` from several.

    Raises:
        ValueError: when two reports name the same metric.
    """
    merged: dict[str, float] = {}
    for report in reports:
        clashes = sorted(set(merged) & set(report))
        if clashes:
            raise ValueError(f"metric names reported twice: {clashes}")
        merged.update({name: float(value) for name, value in report.items()})
    return merged


def reference_table(metrics: Mapping[str, float], seconds: Mapping[str, float], *,
                    prefix: str, datasets: Sequence[str], methods: Sequence[str],
                    targets: Mapping[str, float], published: Mapping[str, str],
                    reference_seconds: Mapping[str, float]) -> str:
    """Markdown table, one row per dataset and method: the SVM / linear / raw 1-NN accuracy
    (``<prefix>.<dataset>.<method>.{svm,linear}.acc``, ``<prefix>.<dataset>.raw_1nn.acc``)
    beside each dataset's target and published figure, and the pretraining seconds
    (``<prefix>.<dataset>.<method>.pretrain_seconds`` in ``seconds``) as a ratio to the
    reference seconds."""
    rows = {}
    for dataset in datasets:
        for method in methods:
            key = f"{prefix}.{dataset}.{method}"
            reference = reference_seconds.get(dataset)
            took = seconds.get(f"{key}.pretrain_seconds")
            rows[f"{dataset} / {method}"] = {
                "svm acc": metrics.get(f"{key}.svm.acc"),
                "linear acc": metrics.get(f"{key}.linear.acc"),
                "raw 1-NN acc": metrics.get(f"{prefix}.{dataset}.raw_1nn.acc"),
                "target (TS2Vec here)": targets.get(dataset),
                "published": published.get(dataset),
                "pretrain s": took,
                "TS2Vec s": reference,
                "time ratio": took / reference if took is not None and reference else None,
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "dataset / method"
    return to_markdown(table, float_format=".3f") + "\n"


def baseline_table(metrics: Mapping[str, float], *, prefix: str, datasets: Sequence[str],
                   baselines: Sequence[str], methods: Sequence[str]) -> str:
    """Markdown table, one row per dataset: each baseline's test accuracy and fit seconds
    (``<prefix>.<dataset>.<baseline>.{acc,fit_seconds}``) beside each method's SVM-protocol
    accuracy (``<prefix>.<dataset>.<method>.svm.acc``)."""
    rows = {}
    for dataset in datasets:
        key = f"{prefix}.{dataset}"
        row = {f"{name} acc": metrics.get(f"{key}.{name}.acc") for name in baselines}
        row |= {f"{name} fit s": metrics.get(f"{key}.{name}.fit_seconds") for name in baselines}
        row |= {f"{method} svm acc": metrics.get(f"{key}.{method}.svm.acc") for method in methods}
        rows[dataset] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "dataset"
    return to_markdown(table, float_format=".3f") + "\n"
