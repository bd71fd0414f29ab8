"""Structured-noise removal on sparse-view CT (issue 5)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
