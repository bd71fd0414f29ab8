from .pipeline import create_pipeline, create_signal_pipeline

__all__ = ["create_pipeline", "create_signal_pipeline"]
