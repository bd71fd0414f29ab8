"""Matplotlib figures (object-oriented API only, no pyplot state) for evaluation reports."""

from contrastive_signals.plots.attention import attention_figure
from contrastive_signals.plots.confusion import confusion_matrix_figure
from contrastive_signals.plots.embeddings import tsne_figure
from contrastive_signals.plots.history import training_curves_figure

__all__ = ["attention_figure", "confusion_matrix_figure", "training_curves_figure", "tsne_figure"]
