from kedro.pipeline import Pipeline, node

from .nodes import split_digit_images, summarise_splits


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(split_digit_images, ["digit_images_raw", "params:ingestion"], "digit_splits",
                 name="split_digit_images"),
            node(summarise_splits, "digit_splits", "digit_split_summary", name="summarise_digit_splits"),
        ],
        tags="ingestion",
    )
