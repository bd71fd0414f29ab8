"""One pretraining pipeline, instantiated once per objective (namespace ``simclr``, ``supcon``)."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import train_contrastive_encoder

OBJECTIVES = ("simclr", "supcon")


def _objective_pipeline(objective: str) -> Pipeline:
    train = update_wrapper(partial(train_contrastive_encoder, name=objective), train_contrastive_encoder)
    template = Pipeline([
        node(train, ["digit_features", "params:settings"],
             ["encoder", "history", "history_metrics"], name="train_contrastive_encoder"),
    ])
    return pipeline(
        template,
        namespace=objective,
        inputs={"digit_features"},
        parameters={"params:settings": f"params:pretraining.{objective}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([_objective_pipeline(o) for o in OBJECTIVES], tags="pretraining")
