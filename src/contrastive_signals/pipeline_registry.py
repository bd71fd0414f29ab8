"""Project pipelines: each stage alone, and ``__default__`` = all of them."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from contrastive_signals.pipelines import (
    evaluation,
    features,
    ingestion,
    pretraining,
    supervised,
    triplet,
)


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "features": features.create_pipeline(),
        "pretraining": pretraining.create_pipeline(),
        "triplet": triplet.create_pipeline(),
        "supervised": supervised.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
