"""CTC sequence labelling on synthetic sequences: one training/evaluation template under two
namespaces (``ctc_cnn``, ``ctc_bilstm``), plus the shared data, curves and report nodes in the
``ctc`` group."""

from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.common import merged_report
from contrastive_signals.pipelines.wiring import bind

from .nodes import (
    MODELS,
    collect_ctc_metrics,
    evaluate_ctc_model,
    make_ctc_sequences,
    plot_ctc_cer_curves,
    plot_ctc_emissions,
    train_ctc_model,
)

SEQUENCES = "ctc_synthetic_sequences"
# Flat metric dicts from other pipelines that the report node merges into ctc_metrics.
EXTRA_REPORTS: tuple[str, ...] = ("sleep_metrics",)  # from the sleep pipeline


def _model_pipeline(model: str) -> Pipeline:
    namespace = f"ctc_{model}"
    template = Pipeline([
        node(bind(train_ctc_model, model=model), [SEQUENCES, "params:data", "params:settings"],
             ["encoder", "history", "history_metrics"], name="train_ctc_model"),
        node(evaluate_ctc_model, [SEQUENCES, "encoder", "params:decoding"], "test_scores",
             name="evaluate_ctc_model"),
        node(bind(plot_ctc_emissions, name=namespace), [SEQUENCES, "encoder", "params:plots"],
             "emissions_plot", name="plot_ctc_emissions"),
    ])
    return pipeline(template, namespace=namespace, inputs={SEQUENCES}, parameters={
        "params:data": "params:ctc.data", "params:settings": f"params:ctc.{model}",
        "params:decoding": "params:ctc.decoding", "params:plots": "params:ctc.plots"})


def _shared_pipeline() -> Pipeline:
    namespaces = [f"ctc_{model}" for model in MODELS]
    histories = {name: f"{name}.history" for name in namespaces}
    scores = {name: f"{name}.test_scores" for name in namespaces}
    outputs = {SEQUENCES, "ctc_cer_curves_plot", "ctc_synthetic_metrics", "ctc_metrics",
               "ctc_metrics_mlflow"}
    template = Pipeline([
        node(make_ctc_sequences, "params:ctc", SEQUENCES, name="make_ctc_sequences"),
        node(plot_ctc_cer_curves, histories, "ctc_cer_curves_plot", name="plot_ctc_cer_curves"),
        node(collect_ctc_metrics, scores, "ctc_synthetic_metrics", name="collect_ctc_metrics"),
        node(merged_report, ["ctc_synthetic_metrics", *EXTRA_REPORTS],
             ["ctc_metrics", "ctc_metrics_mlflow"], name="write_ctc_report"),
    ])
    return pipeline(template, namespace="ctc",
                    inputs={*histories.values(), *scores.values(), *EXTRA_REPORTS},
                    outputs=outputs, parameters={"params:ctc"})


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([_shared_pipeline(), *(_model_pipeline(m) for m in MODELS)], tags="ctc")
