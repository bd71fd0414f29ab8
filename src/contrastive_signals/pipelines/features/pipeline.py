"""The `features` stage: image features for the digits path, and the declarative signal
feature steps (``signal_features.<dataset>.steps`` in parameters) for signal datasets."""

from kedro.pipeline import Pipeline, node

from contrastive_signals.pipelines.wiring import bind

from .nodes import build_image_features, build_signal_features

# Signal dataset -> (catalog input, catalog output). Each gets the recipe
# `params:signal_features.<name>`.
SIGNAL_DATASETS = {
    "sleep": ("sleep.epochs", "sleep.epoch_features"),
    "ctc": ("ctc_synthetic_sequences", "ctc_sequence_features"),
}


def create_pipeline(**kwargs) -> Pipeline:
    """Image features of the digit splits (part of the default run)."""
    return Pipeline(
        [node(build_image_features, ["digit_splits", "params:features"], "digit_features",
              name="build_image_features")],
        tags="features",
    )


def _signal_node(name: str, source: str, target: str):
    return node(bind(build_signal_features, dataset=name), [source, f"params:signal_features.{name}"], target,
                name=f"build_{name}_signal_features")


def create_signal_pipeline(datasets: tuple[str, ...] = tuple(SIGNAL_DATASETS)) -> Pipeline:
    """Signal features for each named dataset; its input comes from the catalog, so run
    the dataset's ingestion first (e.g. `kedro run --pipeline=sleep`)."""
    return Pipeline([_signal_node(name, *SIGNAL_DATASETS[name]) for name in datasets],
                    tags=["features", "signal_features"])
