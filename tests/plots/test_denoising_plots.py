import numpy as np
import pytest
from matplotlib.figure import Figure

from contrastive_signals.plots.denoising import swap_figure


def test_swap_figure_has_one_panel_per_image_and_column():
    columns = {name: np.random.default_rng(0).random((3, 8, 8)) for name in ("a", "b", "c")}
    figure = swap_figure(columns, title="t")
    assert isinstance(figure, Figure) and len(figure.axes) == 9
    assert [ax.get_title() for ax in figure.axes[:1]] == ["a"]


def test_swap_figure_rejects_ragged_columns():
    with pytest.raises(ValueError, match="different numbers"):
        swap_figure({"a": np.zeros((2, 4, 4)), "b": np.zeros((3, 4, 4))}, title="t")
    with pytest.raises(ValueError, match="no columns"):
        swap_figure({}, title="t")


def test_signed_columns_share_a_symmetric_diverging_scale():
    rng = np.random.default_rng(0)
    columns = {"clean": rng.random((2, 4, 4)), "diff": rng.normal(size=(2, 4, 4)),
               "other": 3 * rng.normal(size=(2, 4, 4))}
    figure = swap_figure(columns, title="t", signed=("diff", "other"))
    bound = float(np.abs(columns["other"]).max())
    images = [ax.get_images()[0] for ax in figure.axes]
    assert images[0].get_clim() == (0.0, 1.0)
    assert images[2].get_clim() == (-bound, bound) == images[4].get_clim()
    with pytest.raises(ValueError, match=r"signed columns \['nope'\]"):
        swap_figure(columns, title="t", signed=("nope",))
