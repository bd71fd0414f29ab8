"""Figures are built with the object-oriented API and render headless (Agg, in memory)."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from contrastive_signals.plots import (  # noqa: E402
    confusion_matrix_figure,
    training_curves_figure,
    tsne_figure,
)


def renders(fig: Figure) -> bool:
    """Render to an in-memory PNG (no file I/O)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG")


def n_points(ax) -> int:
    return sum(len(collection.get_offsets()) for collection in ax.collections)


def test_tsne_figure_one_point_per_row_with_legend():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    embeddings = rng.standard_normal((30, 6)) + 5 * labels[:, None]
    fig = tsne_figure(embeddings, labels, title="t", seed=0, perplexity=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert n_points(ax) == 30
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    assert ax.get_title() == "t"
    assert renders(fig)


def test_tsne_figure_is_reproducible_and_uses_colourbar_for_many_classes():
    rng = np.random.default_rng(1)
    embeddings, labels = rng.standard_normal((50, 4)), np.arange(50) % 25
    fig = tsne_figure(embeddings, labels, title="many", seed=3)  # perplexity 30 < 50
    assert len(fig.axes) == 2  # scatter + colourbar
    again = tsne_figure(embeddings, labels, title="many", seed=3)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(),
                               again.axes[0].collections[0].get_offsets())


def test_tsne_figure_lowers_perplexity_for_tiny_sets_and_rejects_bad_shapes():
    fig = tsne_figure(np.random.default_rng(0).standard_normal((5, 3)), np.arange(5),
                      title="tiny", seed=0)
    assert n_points(fig.axes[0]) == 5
    with pytest.raises(ValueError, match="same N"):
        tsne_figure(np.zeros((5, 3)), np.arange(4), title="bad", seed=0)


def test_confusion_matrix_figure_counts_and_normalised_rows():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    fig = confusion_matrix_figure(y_true, y_pred, class_names=["a", "b", "c"], title="cm")
    assert len(fig.axes) == 2  # matrix + colourbar
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    assert len(ax.texts) == 9
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert renders(fig)

    normalised = confusion_matrix_figure(y_true, y_pred, title="cm", normalize=True)
    matrix = normalised.axes[0].images[0].get_array()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(matrix[1], [0, 2 / 3, 1 / 3])


def test_confusion_matrix_figure_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        confusion_matrix_figure(np.zeros(3), np.zeros(2), title="x")
    with pytest.raises(ValueError, match=r"labels \[3\] have no entry in class_names"):
        confusion_matrix_figure(np.array([0, 3]), np.array([0, 1]), class_names=["a", "b"],
                                title="x")


def test_training_curves_figure_one_panel_per_model():
    histories = {
        "simclr": {"train_loss": [3.0, 2.0, 1.5], "lr": [0.1, 0.1, 0.05],
                   "val_loss": [3.1, 2.2, 1.9], "val_knn_acc": [0.3, 0.5, 0.6]},
        "scratch": {"train_loss": [1.0, 0.5]},
    }
    fig = training_curves_figure(histories, title="curves")
    simclr, twin, scratch = fig.axes  # simclr has a twin axis for its accuracy curve
    assert (simclr.get_title(), scratch.get_title()) == ("simclr", "scratch")
    assert [line.get_label() for line in simclr.lines] == ["train_loss", "val_loss"]
    assert [line.get_label() for line in twin.lines] == ["val_knn_acc"]
    np.testing.assert_array_equal(simclr.lines[0].get_xdata(), [1, 2, 3])  # epochs from 1
    assert len(scratch.lines) == 1
    assert fig.get_suptitle() == "curves"
    assert renders(fig)
    with pytest.raises(ValueError, match="empty"):
        training_curves_figure({}, title="none")
