"""AFM example-curve figure."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from contrastive_signals.plots.afm import example_curves_figure


def test_one_row_per_class_with_event_markers():
    force = np.zeros((5, 40))
    labels = np.array([0, 1, 1, 2, 3])
    events = [np.array([], int), np.array([10]), np.array([12]), np.array([5, 20]), np.array([3])]
    fig = example_curves_figure(force, labels, events, class_names=["a", "b", "c", "d"],
                                per_class=2, predicted=labels, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 5                       # classes a, c, d have one curve each
    markers = visible[3].lines[1]                  # class c: two events
    assert len(markers.get_xdata()) == 2
    assert visible[1].get_title() == "b -> b"


def test_bad_shapes():
    with pytest.raises(ValueError, match="force"):
        example_curves_figure(np.zeros(5), np.zeros(5), [], class_names=["a"])
