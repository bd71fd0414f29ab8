"""Contrastive Signals: contrastive deep learning on signals and images as Kedro pipelines."""

__version__ = "0.1.0"
