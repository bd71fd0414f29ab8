"""One triplet pipeline under two namespaces: ``triplet_scratch`` and ``triplet_pretrained``
(initialised from the SimCLR encoder)."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import train_triplet_encoder_from_pretrained, train_triplet_encoder_from_scratch

PRETRAINED_SOURCE = "simclr.encoder"


def _named(func, name):
    return update_wrapper(partial(func, name=name), func)


def _variant(namespace: str, pretrained: bool) -> Pipeline:
    if pretrained:
        train = node(_named(train_triplet_encoder_from_pretrained, namespace),
                     ["digit_features", "initial_encoder", "params:settings"],
                     ["encoder", "history", "history_metrics"], name="train_triplet_encoder")
        inputs = {"digit_features": "digit_features", "initial_encoder": PRETRAINED_SOURCE}
    else:
        train = node(_named(train_triplet_encoder_from_scratch, namespace),
                     ["digit_features", "params:settings"],
                     ["encoder", "history", "history_metrics"], name="train_triplet_encoder")
        inputs = {"digit_features": "digit_features"}
    return pipeline([train], namespace=namespace, inputs=inputs,
                    parameters={"params:settings": "params:triplet"})


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([_variant("triplet_scratch", False), _variant("triplet_pretrained", True)],
                    tags="triplet")
