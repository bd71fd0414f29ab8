"""Inference pipelines ``<task>_inference``: files dropped into a folder -> predictions."""

from .afm import create_afm_pipeline
from .pipeline import create_digits_pipeline, create_sleep_pipeline

__all__ = ["create_afm_pipeline", "create_digits_pipeline", "create_sleep_pipeline"]
