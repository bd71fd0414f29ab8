"""One triplet pipeline under three namespaces: ``triplet_scratch``, ``triplet_pretrained``
(initialised from the SimCLR encoder) and ``triplet_vit`` (the Vision Transformer from
scratch, parameters ``triplet_vit``)."""


from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.wiring import bind

from .nodes import train_triplet_encoder_from_pretrained, train_triplet_encoder_from_scratch

PRETRAINED_SOURCE = "simclr.encoder"


def _variant(namespace: str, pretrained: bool, params: str = "triplet") -> Pipeline:
    if pretrained:
        train = node(bind(train_triplet_encoder_from_pretrained, name=namespace),
                     ["digit_features", "initial_encoder", "params:settings"],
                     ["encoder", "history", "history_metrics"], name="train_triplet_encoder")
        inputs = {"digit_features": "digit_features", "initial_encoder": PRETRAINED_SOURCE}
    else:
        train = node(bind(train_triplet_encoder_from_scratch, name=namespace),
                     ["digit_features", "params:settings"],
                     ["encoder", "history", "history_metrics"], name="train_triplet_encoder")
        inputs = {"digit_features": "digit_features"}
    return pipeline([train], namespace=namespace, inputs=inputs,
                    parameters={"params:settings": f"params:{params}"})


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([_variant("triplet_scratch", False), _variant("triplet_pretrained", True),
                     _variant("triplet_vit", False, "triplet_vit")], tags="triplet")
