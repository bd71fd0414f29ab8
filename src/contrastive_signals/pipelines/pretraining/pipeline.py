"""One pretraining pipeline, instantiated once per namespace: ``simclr``, ``supcon`` (the digits
CNN) and ``simclr_vit``, ``supcon_vit`` (the Vision Transformer)."""


from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.wiring import bind

from .nodes import train_contrastive_encoder

OBJECTIVES = ("simclr", "supcon", "simclr_vit", "supcon_vit")


def _objective_pipeline(objective: str) -> Pipeline:
    train = bind(train_contrastive_encoder, name=objective)
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
