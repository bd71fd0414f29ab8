"""AFM force curves: simulated and real retract curves, rupture-event classification."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
