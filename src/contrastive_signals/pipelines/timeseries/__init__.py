"""Time-series representation learning on UCR/UEA sets and MNIST-1D (pipeline ``timeseries``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
