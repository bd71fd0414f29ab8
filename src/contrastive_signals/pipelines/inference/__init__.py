"""Inference pipelines ``<task>_inference``: files dropped into a folder -> predictions."""

from .pipeline import create_digits_pipeline, create_sleep_pipeline

__all__ = ["create_digits_pipeline", "create_sleep_pipeline"]
