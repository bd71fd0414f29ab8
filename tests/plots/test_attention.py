"""Attention-map figure of ViT digits."""

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from contrastive_signals.models.vit import VisionTransformer
from contrastive_signals.plots.attention import attention_figure


def test_figure_from_a_vit_two_panels_per_digit(tiny_digit_splits):
    images = tiny_digit_splits["test"]["images"][:5]
    labels = tiny_digit_splits["test"]["labels"][:5]
    model = VisionTransformer(patch_size=4, embedding_dim=16, depth=1, heads=2).eval()
    with torch.no_grad():
        maps = model.attention_maps(images)
    fig = attention_figure(images.numpy(), maps.numpy(), labels=labels.numpy(), columns=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 10
    plain, overlay = fig.axes[0], fig.axes[1]
    assert len(plain.images) == 1 and len(overlay.images) == 2
    assert overlay.images[1].get_array().shape == (7, 7)
    assert overlay.images[1].get_array().max() == pytest.approx(1.0)  # scaled to its maximum
    assert plain.get_title() == str(int(labels[0]))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_three_dimensional_images_and_no_labels():
    fig = attention_figure(np.zeros((2, 8, 8)), np.zeros((2, 2, 2)))
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == ""


@pytest.mark.parametrize("images,maps,kwargs,match", [
    (np.zeros((2, 8, 8)), np.zeros((3, 2, 2)), {}, "same N"),
    (np.zeros((0, 8, 8)), np.zeros((0, 2, 2)), {}, "N >= 1"),
    (np.zeros((2, 8)), np.zeros((2, 2, 2)), {}, "images must be"),
    (np.zeros((2, 8, 8)), np.zeros((2, 2, 2)), {"labels": np.zeros(3)}, "labels must be"),
    (np.zeros((2, 8, 8)), np.zeros((2, 2, 2)), {"columns": 0}, "columns"),
    (np.zeros((2, 8, 8)), np.zeros((2, 2, 2)), {"alpha": 2.0}, "alpha"),
])
def test_bad_inputs(images, maps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_figure(images, maps, **kwargs)
