from kedro.pipeline import Pipeline, node, pipeline

from .nodes import train_supervised_classifier


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline([
        node(train_supervised_classifier, ["digit_features", "params:supervised"],
             ["encoder", "history", "history_metrics"], name="train_supervised_classifier"),
    ])
    return pipeline(template, namespace="supervised", inputs={"digit_features"},
                    parameters={"params:supervised"}, tags="supervised")
