"""``digits_inference`` and ``sleep_inference``: new files in a folder -> predictions with a
chosen model (``inference.<task>.model``: latest, a registered version, an MLflow URI)."""

from kedro.pipeline import Pipeline, node

from .nodes import digits_inference, sleep_inference


def create_digits_pipeline(**kwargs) -> Pipeline:
    return Pipeline([node(digits_inference, "params:inference.digits",
                          ["digits_inference_predictions", "digits_inference_embeddings",
                           "digits_inference_neighbours_plot"], name="digits_inference")],
                    tags="inference")


def create_sleep_pipeline(**kwargs) -> Pipeline:
    return Pipeline([node(sleep_inference, "params:inference.sleep", "sleep_inference_summary",
                          name="sleep_inference")], tags="inference")
