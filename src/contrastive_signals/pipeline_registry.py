"""Project pipelines: each stage alone, and ``__default__`` = the digits path (ingestion to
evaluation)."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from contrastive_signals.pipelines import (
    afm,
    ctc,
    denoising,
    evaluation,
    features,
    generative,
    inference,
    ingestion,
    pretraining,
    sleep,
    supervised,
    timeseries,
    triplet,
    wav2vec,
)
from contrastive_signals.pipelines.inference import denoising as inference_denoising
from contrastive_signals.pipelines.inference import timeseries as inference_timeseries

DIGITS_STAGES = ("ingestion", "image_features", "pretraining", "triplet", "supervised", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "image_features": features.create_pipeline(),
        # YAML-declared signal feature steps over the signal datasets (after their ingestion).
        "signal_features": features.create_signal_pipeline(),
        "pretraining": pretraining.create_pipeline(),
        "triplet": triplet.create_pipeline(),
        "supervised": supervised.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
        "sleep": sleep.create_pipeline(),
        "afm": afm.create_pipeline(),
        "denoising": denoising.create_pipeline(),
        # Issue 6 in one run and one report (timeseries_metrics.json): the UCR/UEA sets and
        # MNIST-1D (`timeseries_ucr`, its 20-minute budget) plus the sleep label-efficiency
        # test of wav2vec pretraining (`wav2vec`), whose figures join the report.
        "timeseries_ucr": timeseries.create_pipeline(),
        "wav2vec": wav2vec.create_pipeline(),
        "timeseries": (timeseries.create_pipeline(extra_reports=["ts_sleep_metrics"])
                       + wav2vec.create_pipeline()),
        # Issue 4's `ctc` run: synthetic CTC plus the sleep stages, one report.
        "ctc": ctc.create_pipeline() + sleep.create_pipeline(),
        # Issue 16: new files -> predictions with a logged MLflow model (docs/inference.md).
        "digits_inference": inference.create_digits_pipeline(),
        "sleep_inference": inference.create_sleep_pipeline(),
        "afm_inference": inference.create_afm_pipeline(),
        "timeseries_inference": inference_timeseries.create_timeseries_pipeline(),
        "denoising_inference": inference_denoising.create_denoising_pipeline(),
    }
    # Issue 18: generative models on the digits, judged by the digits pipeline's supervised
    # CNN and SimCLR encoder (read from the catalog: run the digits pipeline first, or
    # `generative_with_digits`, which trains just those two first).
    pipelines["generative"] = generative.create_pipeline()
    pipelines["generative_with_digits"] = (
        pipelines["ingestion"] + pipelines["image_features"]
        + pipelines["pretraining"].only_nodes_with_namespaces(["simclr"])
        + pipelines["supervised"].only_nodes_with_namespaces(["supervised"])
        + pipelines["generative"])
    pipelines["features"] = pipelines["image_features"] + pipelines["signal_features"]
    # `kedro run` alone is the digits path of the quick start; the signal pipelines
    # (sleep, ctc, ...) have their own time budgets and run by name.
    pipelines["__default__"] = sum((pipelines[name] for name in DIGITS_STAGES), Pipeline([]))
    return pipelines
