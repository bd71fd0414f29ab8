from kedro.pipeline import Pipeline, node

from .nodes import build_image_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [node(build_image_features, ["digit_splits", "params:features"], "digit_features",
              name="build_image_features")],
        tags="features",
    )
