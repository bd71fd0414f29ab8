"""Evaluation: one per-encoder sub-pipeline (embed, probe, plot) under the namespace
``evaluation.<encoder>``, then one report over all encoders."""


from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.wiring import bind

from .nodes import (
    build_results_report,
    encoder_embeddings,
    evaluate_embeddings,
    pixel_embeddings,
    plot_attention_maps,
    plot_classifier_confusion,
    plot_embedding_tsne,
    plot_probe_confusion,
    plot_training_curves,
    score_classifier,
)

CNN_ENCODERS = ("simclr", "supcon", "triplet_scratch", "triplet_pretrained", "supervised")
VIT_ENCODERS = ("simclr_vit", "supcon_vit", "triplet_vit", "supervised_vit")
TRAINED_ENCODERS = (*CNN_ENCODERS, *VIT_ENCODERS)
ENCODERS = ("raw", *TRAINED_ENCODERS)
CLASSIFIERS = ("supervised", "supervised_vit")


def _encoder_pipeline(name: str) -> Pipeline:
    if name == "raw":
        embed_node = node(pixel_embeddings, "digit_features", "embeddings", name="embed")
        inputs = {"digit_features"}
    else:
        embed_node = node(encoder_embeddings, ["digit_features", "encoder"], "embeddings", name="embed")
        inputs = {"digit_features": "digit_features", "encoder": f"{name}.encoder"}
    attention = ([node(bind(plot_attention_maps, name=name), ["digit_features", "encoder"],
                       "attention_plot", name="plot_attention")]
                 if name in VIT_ENCODERS else [])
    template = Pipeline([
        embed_node, *attention,
        node(evaluate_embeddings, ["embeddings", "params:evaluation"], "probe_scores", name="evaluate"),
        node(bind(plot_embedding_tsne, name=name), ["embeddings", "params:evaluation"], "tsne_plot",
             name="plot_tsne"),
        node(bind(plot_probe_confusion, name=name), "probe_scores", "confusion_plot", name="plot_confusion"),
    ])
    return pipeline(template, namespace=f"evaluation.{name}", inputs=inputs,
                    parameters={"params:evaluation"})


def _classifier_scores(name: str) -> Pipeline:
    template = Pipeline([
        node(score_classifier, ["digit_features", "encoder"], "scores", name="score_classifier"),
        node(bind(plot_classifier_confusion, name=name), "scores", "classifier_confusion_plot",
             name="plot_classifier_confusion"),
    ])
    return pipeline(template, namespace=f"evaluation.{name}",
                    inputs={"digit_features": "digit_features", "encoder": f"{name}.encoder"})


def _report() -> Pipeline:
    outputs = ["evaluation_metrics", "evaluation_metrics_mlflow", "results_table_csv",
               "results_table_md", "training_curves_plot"]
    scores = {name: f"{name}_probe_scores" for name in ENCODERS}
    classifier_scores = {name: f"{name}_classifier_scores" for name in CLASSIFIERS}
    histories = {name: f"{name}_history" for name in TRAINED_ENCODERS}
    template = Pipeline([
        node(bind(build_results_report, classifiers=CLASSIFIERS),
             {**{s: s for s in classifier_scores.values()}, **scores},
             outputs[:4], name="build_results_report"),
        node(plot_training_curves, histories, outputs[4], name="plot_training_curves"),
    ])
    # In the `evaluation` group (kedro-viz folds it), reading the per-encoder outputs.
    inputs = {**{classifier_scores[n]: f"evaluation.{n}.scores" for n in CLASSIFIERS},
              **{scores[n]: f"evaluation.{n}.probe_scores" for n in ENCODERS},
              **{histories[n]: f"{n}.history" for n in TRAINED_ENCODERS}}
    return pipeline(template, namespace="evaluation", inputs=inputs, outputs=set(outputs))


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([*(_encoder_pipeline(n) for n in ENCODERS),
                     *(_classifier_scores(n) for n in CLASSIFIERS), _report()], tags="evaluation")
