"""Sparse-view CT denoising nodes: data, the HVAE (method ``hvae_split``) and the U-Net
(``image_regression``) trained by fit, the scores per view count, the figures, the report."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

from contrastive_signals.data.sparse_view_ct import (
    clean_image_splits,
    held_out_images,
    sparse_view_pairs,
)
from contrastive_signals.methods.base import check_compatible
from contrastive_signals.methods.hvae import HVAESplit
from contrastive_signals.methods.regression import ImageRegression, PairedImageMethod
from contrastive_signals.metrics.denoising import (
    denoiser_psnr,
    sparse_view_scores,
    split_scores,
    swap_psnr,
)
from contrastive_signals.metrics.report import finite_report
from contrastive_signals.models.hvae import latent_part_effects, swap_donors, swap_panels
from contrastive_signals.models.registry import build_model, from_bundle, to_bundle
from contrastive_signals.pipelines.denoising.params import TrainingParams, check_params
from contrastive_signals.plots.denoising import swap_figure
from contrastive_signals.signal.radon import SparseViewCT
from contrastive_signals.training.autocast import CpuBf16Forward
from contrastive_signals.training.device import resolve_device, seed_everything, torch_threads
from contrastive_signals.training.fit import fit
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps
from contrastive_signals.training.ranks import local_forward_rows


def make_denoising_images(params: dict[str, Any], image_folders: dict[str, Any]
                          ) -> dict[str, torch.Tensor]:
    """Check every ``denoising`` parameter (a mistake fails here, before training), then make
    the clean train/val/test images ``[M, N, N]`` in [0, 1] of ``data.dataset``."""
    return clean_image_splits(check_params(params).data, image_folders)


def make_figure_images(params: dict[str, Any], image_folders: dict[str, Any]
                       ) -> dict[str, torch.Tensor]:
    """A few held-out clean images ``[K, N, N]`` of every data set in
    ``evaluation.figure_datasets``."""
    config = check_params(params)
    return held_out_images(config.data, config.evaluation.figure_datasets,
                           config.evaluation.figure_images, image_folders)


def make_sparse_view_pairs(images: dict[str, torch.Tensor], params: dict[str, Any]
                           ) -> dict[str, Any]:
    """Clean images and their FBP reconstructions from each number of views (on the GPU when
    there is one)."""
    config = check_params(params)
    return sparse_view_pairs(images, size=config.data.image_size, views=config.noise.views,
                             train_views=config.noise.train_views,
                             device=resolve_device(config.noise.device))


def _train(method: PairedImageMethod, architecture: str, model_config: dict[str, Any],
           pairs: dict[str, Any], run: TrainingParams,
           score: Callable[[nn.Module, dict[str, Any]], float], *, name: str
           ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Fit ``method`` on the training pairs, ``val_psnr = score(model, val pairs)`` after each
    epoch -> (bundle, history, history as metric steps)."""
    check_compatible(method.name, method.requires, architecture)
    seed_everything(run.fit.seed)
    model = method.build(build_model(architecture, model_config, seed=run.fit.seed))
    batches = method.batches(pairs["train"], batch_size=run.batch_size, epochs=run.fit.epochs)
    with torch_threads(run.num_threads):
        result = fit(model, loss_fn=method.loss, batches=batches, hooks=method,
                     validate=lambda net: {"val_psnr": score(net, pairs["val"])},
                     config=replace(run.fit, name=name))
    bundle = to_bundle(method.export(result.model), architecture, model_config)
    return bundle, result.history, history_as_metric_steps(result.history, prefix=name)


def cpu_forward(run: TrainingParams) -> CpuBf16Forward:
    """The CPU forward policy of one denoiser's training block (bf16 and/or channels-last)."""
    return CpuBf16Forward(enabled=run.cpu_bf16, device=run.fit.device,
                          channels_last=run.cpu_channels_last)


def train_hvae(pairs: dict[str, Any], params: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train the hierarchical VAE (method ``hvae_split``) on clean and sparse-view images;
    validated by the PSNR of the swap (:func:`~contrastive_signals.metrics.denoising.swap_psnr`)."""
    config = check_params(params)
    run = config.hvae
    method = HVAESplit(run.loss, forward=cpu_forward(run))
    model_config = {"image_size": config.data.image_size, **run.model.config()}
    # on data-parallel ranks each validates its share of the images (the one-process score)
    score = functools.partial(swap_psnr, map_rows=local_forward_rows)
    return _train(method, "hvae", model_config, pairs, run, score, name="denoising_hvae")


def train_unet(pairs: dict[str, Any], params: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train the residual U-Net on (noisy, clean) pairs with the mean squared error."""
    run = check_params(params).unet
    method = ImageRegression(forward=cpu_forward(run))
    score = functools.partial(denoiser_psnr, map_rows=local_forward_rows)
    return _train(method, "residual_unet", run.model.config(), pairs, run, score,
                  name="denoising_unet")


def evaluate_denoising(pairs: dict[str, Any], hvae_bundle: dict[str, Any],
                       unet_bundle: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """PSNR/SSIM of every denoiser on the test set for each number of views
    (:func:`~contrastive_signals.metrics.denoising.sparse_view_scores`), and where the HVAE
    keeps the streaks (:func:`~contrastive_signals.metrics.denoising.split_scores`)."""
    config = check_params(params)
    hvae = from_bundle(hvae_bundle, outputs=("split_latent",))
    with torch_threads(config.hvae.num_threads):
        scores = sparse_view_scores(
            pairs, hvae=hvae, unet=from_bundle(unet_bundle, outputs=("image",)),
            views=config.noise.views, tv_weights=config.tv.weights,
            donor_pool=config.data.donor_pool,
            generator=torch.Generator().manual_seed(config.evaluation.seed))
        return {**scores, **split_scores(pairs["test"], hvae, config.noise.views)}


def plot_denoising_figure(figure_images: dict[str, torch.Tensor], train_pairs: dict[str, Any],
                          hvae_bundle: dict[str, Any], params: dict[str, Any], *,
                          dataset: str) -> Figure:
    """The swap panels (:func:`~contrastive_signals.models.hvae.swap_panels`) of a few held-out
    images of ``dataset`` at ``evaluation.figure_views`` views."""
    config = check_params(params)
    if dataset not in figure_images:
        raise ValueError(f"no figure images for '{dataset}'; evaluation.figure_datasets is "
                         f"{sorted(figure_images)}")
    v, clean = config.evaluation.figure_views, figure_images[dataset]
    hvae = from_bundle(hvae_bundle, outputs=("split_latent",))
    true_noisy = SparseViewCT(config.data.image_size, v).sparse_view(clean)
    donors = swap_donors(train_pairs, v, clean.shape[0], pool=config.data.donor_pool,
                         generator=torch.Generator().manual_seed(config.evaluation.seed))
    with torch_threads(config.hvae.num_threads):
        panels = swap_panels(hvae, clean, true_noisy, *donors)
    return swap_figure({k: c.numpy() for k, c in panels.items()},
                       title=f"{dataset}: sparse-view CT, {v} views (HVAE trained on "
                             f"{config.data.dataset})")


def plot_latent_part_figure(pairs: dict[str, Any], hvae_bundle: dict[str, Any],
                            params: dict[str, Any]) -> Figure:
    """What each part of the HVAE's latent holds, for the first test images at
    ``evaluation.figure_views`` views: clean, noisy, the streaks (noisy - clean), and what the
    noisy image's noise parts and signal parts add to the clean image's own decode
    (:func:`~contrastive_signals.models.hvae.latent_part_effects`)."""
    config = check_params(params)
    v, k = config.evaluation.figure_views, config.evaluation.figure_images
    # figure_views is one of noise.views (checked with the parameters)
    clean, noisy = pairs["test"]["clean"][:k, None], pairs["test"]["noisy"][v][:k, None]
    with torch_threads(config.hvae.num_threads):
        effects = latent_part_effects(from_bundle(hvae_bundle, outputs=("split_latent",)),
                                      clean, noisy)
    columns = {"clean": clean[:, 0], "noisy": noisy[:, 0], **effects}
    return swap_figure({name: c.numpy() for name, c in columns.items()},
                       signed=tuple(effects),
                       title=f"What the latent parts hold, {v} views: the streaks (noisy - "
                             f"clean) and what each part of the noisy image's code adds")


def write_denoising_report(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """The flat ``denoising_metrics`` report and the same shaped for MLflow."""
    report = finite_report(metrics)
    return report, final_metrics_as_steps(report)


def select_train_pairs(pairs: dict[str, Any]) -> dict[str, Any]:
    """The training part of the pairs (the figures draw their swap donors from it)."""
    return pairs["train"]
