"""The generative pipeline: a DDPM and a GAN on the digits, judged in the project's own
embedding spaces (docs/generative.md)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
