"""Supervised digits classifiers: ``supervised`` (the tiny CNN) and ``supervised_vit``."""

from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.wiring import bind

from .nodes import train_supervised_classifier

CLASSIFIERS = ("supervised", "supervised_vit")


def _classifier(name: str) -> Pipeline:
    template = Pipeline([
        node(bind(train_supervised_classifier, name=name), ["digit_features", "params:settings"],
             ["encoder", "history", "history_metrics"], name="train_supervised_classifier"),
    ])
    return pipeline(template, namespace=name, inputs={"digit_features"},
                    parameters={"params:settings": f"params:{name}"})


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([_classifier(name) for name in CLASSIFIERS], tags="supervised")
