"""AFM rupture-event classification (``kedro run --pipeline=afm``): simulate -> afmformats
files -> ingest -> split -> preprocess per input (``deriv``, ``noderiv``) -> pretrained
(``afm.pretraining.method``) and fresh encoders -> per variant: triplet fine-tuning + head ->
supervised CNN and find_peaks baselines -> ``afm_metrics`` and plots."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from contrastive_signals.pipelines.wiring import bind

from . import nodes
from .params import LABEL_SUBSETS

INPUTS = ("deriv", "noderiv")
VARIANTS = tuple(f"{inp}_{start}_{labels}" for inp in INPUTS for start in ("pre", "scratch")
                 for labels in LABEL_SUBSETS)
"""The 2 x 2 x 2 ablation: derivative channel, pretraining, label fraction."""
MAIN = nodes.MAIN_VARIANT


def _trained(name: str) -> list[str]:
    return [f"afm.{name}.encoder", f"afm.{name}.history", f"afm.{name}.history_metrics"]


def _input_nodes(inp: str) -> list:
    features = f"afm.{inp}.features"
    return [
        node(bind(nodes.preprocess_afm_curves, derivative=inp == "deriv"),
             ["afm.curves", "params:afm.preprocessing"], features, name=f"afm_preprocess_{inp}"),
        node(bind(nodes.pretrain_encoder, name=f"{inp}.pretrained"),
             [features, "afm.split", "params:afm.model", "params:afm.pretraining"],
             _trained(f"{inp}.pretrained"), name=f"afm_pretrain_{inp}"),
        node(nodes.initial_encoder, [features, "params:afm.model", "params:afm.finetuning"],
             f"afm.{inp}.initial_encoder", name=f"afm_initial_encoder_{inp}"),
    ]


def _evaluate(name: str, features: str):
    return node(nodes.evaluate_classifier, [features, f"afm.{name}.encoder", "afm.split"],
                [f"afm.{name}.predictions", f"afm.{name}.scores"], name=f"afm_evaluate_{name}")


def _variant_nodes(variant: str) -> list:
    inp, start, labels = variant.split("_")
    features = f"afm.{inp}.features"
    encoder = f"afm.{inp}.pretrained.encoder" if start == "pre" else f"afm.{inp}.initial_encoder"
    return [node(bind(nodes.finetune_classifier, label_subset=labels, name=variant),
                 [features, encoder, "afm.split", "params:afm.finetuning"], _trained(variant),
                 name=f"afm_finetune_{variant}"),
            _evaluate(variant, features)]


def create_pipeline(**kwargs) -> Pipeline:
    data = [
        node(nodes.simulate_afm_curves, "params:afm.simulation", "afm.simulated_files",
             name="afm_simulate_curves"),
        node(nodes.ingest_afm_curves, ["afm.raw_files", "afm.simulated_files",
                                       "params:afm.ingestion"],
             ["afm.curves", "afm.ingestion_report"], name="afm_ingest_curves"),
        node(nodes.split_afm_curves, ["afm.curves", "params:afm.split"], "afm.split",
             name="afm_split_curves"),
    ]
    baselines = [
        node(nodes.train_supervised_cnn,
             ["afm.deriv.features", "afm.split", "params:afm.model", "params:afm.supervised"],
             _trained("supervised_cnn"), name="afm_train_supervised_cnn"),
        _evaluate("supervised_cnn", "afm.deriv.features"),
        node(nodes.tune_peak_detector, ["afm.noderiv.features", "afm.split",
                                        "params:afm.preprocessing", "params:afm.find_peaks"],
             "afm.find_peaks.detector", name="afm_tune_find_peaks"),
        node(nodes.evaluate_peak_detector,
             ["afm.noderiv.features", "afm.split", "afm.find_peaks.detector"],
             "afm.find_peaks.scores", name="afm_evaluate_find_peaks"),
    ]
    report = [
        node(nodes.report_afm_metrics,
             {"ingestion_report": "afm.ingestion_report", "find_peaks": "afm.find_peaks.scores",
              "supervised": "afm.supervised_cnn.scores",
              **{variant: f"afm.{variant}.scores" for variant in VARIANTS}},
             ["afm_metrics", "afm_metrics_mlflow"], name="afm_report_metrics"),
        node(nodes.plot_example_curves, ["afm.noderiv.features", "afm.split",
                                         "afm.find_peaks.detector", "params:afm.plots"],
             "afm.examples_plot", name="afm_plot_examples"),
        node(nodes.plot_embedding_tsne, [f"afm.{MAIN}.predictions", "params:afm.plots"],
             "afm.tsne_plot", name="afm_plot_tsne"),
        node(nodes.plot_confusion, f"afm.{MAIN}.predictions", "afm.confusion_plot",
             name="afm_plot_confusion"),
    ]
    per_input = [n for inp in INPUTS for n in _input_nodes(inp)]
    per_variant = [n for variant in VARIANTS for n in _variant_nodes(variant)]
    return Pipeline(data + per_input + per_variant + baselines + report, tags="afm")
