"""Prediction on new inputs with trained models, as pure functions (arrays and a model bundle
in, predictions out) that reuse the training feature steps. No Kedro, no MLflow: the Kedro
inference pipelines (``pipelines/inference``) and the MLflow pyfunc models
(``io/mlflow_models.py``) both call these functions (docs/inference.md)."""

from contrastive_signals.inference.bundles import InputError

__all__ = ["InputError"]
