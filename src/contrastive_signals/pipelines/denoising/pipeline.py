"""Sparse-view CT denoising: data, noise, HVAE and U-Net training, evaluation of all methods
(FBP, TV, U-Net, HVAE swap/own, injection), one figure per data set, the report."""

from kedro.pipeline import Pipeline, node

from contrastive_signals.data.sparse_view_ct import BUILTIN_DATASETS
from contrastive_signals.pipelines.wiring import bind

from .nodes import (
    evaluate_denoising,
    make_denoising_images,
    make_figure_images,
    make_sparse_view_pairs,
    plot_denoising_figure,
    plot_latent_part_figure,
    select_train_pairs,
    train_hvae,
    train_unet,
    write_denoising_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    params = "params:denoising"
    figures = [
        node(bind(plot_denoising_figure, dataset=name),
             ["denoising_figure_images", "denoising_train_pairs", "denoising_hvae.encoder",
              params], f"denoising_{name}_figure", name=f"plot_denoising_{name}_figure")
        for name in BUILTIN_DATASETS
    ]
    return Pipeline([
        node(make_denoising_images, [params, "denoising_image_folders"], "denoising_images",
             name="make_denoising_images"),
        node(make_figure_images, [params, "denoising_image_folders"], "denoising_figure_images",
             name="make_denoising_figure_images"),
        node(make_sparse_view_pairs, ["denoising_images", params], "denoising_pairs",
             name="make_sparse_view_pairs"),
        node(select_train_pairs, "denoising_pairs", "denoising_train_pairs",
             name="select_denoising_train_pairs"),
        node(train_hvae, ["denoising_pairs", params],
             ["denoising_hvae.encoder", "denoising_hvae.history", "denoising_hvae.history_metrics"],
             name="train_denoising_hvae"),
        node(train_unet, ["denoising_pairs", params],
             ["denoising_unet.encoder", "denoising_unet.history", "denoising_unet.history_metrics"],
             name="train_denoising_unet"),
        node(evaluate_denoising, ["denoising_pairs", "denoising_hvae.encoder",
                                  "denoising_unet.encoder", params], "denoising_scores",
             name="evaluate_denoising"),
        *figures,
        node(plot_latent_part_figure, ["denoising_pairs", "denoising_hvae.encoder", params],
             "denoising_latent_parts_figure", name="plot_denoising_latent_parts_figure"),
        node(write_denoising_report, "denoising_scores",
             ["denoising_metrics", "denoising_metrics_mlflow"], name="write_denoising_report"),
    ], tags="denoising")
