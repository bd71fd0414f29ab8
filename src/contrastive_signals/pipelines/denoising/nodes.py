"""Sparse-view CT denoising: clean images, sparse-view FBP pairs, the hierarchical VAE with
signal/noise latents (swap to remove or inject noise), the FBP / TV / residual U-Net
baselines, PSNR/SSIM per view count, figures and the report."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from contrastive_signals.data.ct_phantoms import (
    check_image_stack,
    digit_phantoms,
    ellipse_phantoms,
    fit_to_circle,
    sample_image_patches,
    skimage_sample_images,
)
from contrastive_signals.data.digits import embedded_digits
from contrastive_signals.losses.elbo import (
    derangement,
    group_derangement,
    kl_warmup,
    negative_elbo,
    signal_noise_triplet_losses,
    swap_consistency_loss,
)
from contrastive_signals.metrics.image_quality import clip_unit, image_scores
from contrastive_signals.models.hvae import (
    HierarchicalVAE,
    cross_swap_codes,
    own_decode,
    swap_decode,
)
from contrastive_signals.models.registry import to_bundle
from contrastive_signals.models.unet import ResidualUNet, apply_in_batches
from contrastive_signals.pipelines.denoising.params import (
    FOLDER_PREFIX,
    DataParams,
    HVAELossParams,
    check_params,
)
from contrastive_signals.plots.denoising import swap_figure
from contrastive_signals.signal.radon import SparseViewCT
from contrastive_signals.signal.tv import tv_denoise
from contrastive_signals.training.device import resolve_device, seed_everything, torch_threads
from contrastive_signals.training.fit import fit
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

# Model bundles (see models/registry.py) of this pipeline's two architectures.
DENOISING_MODELS = {"hvae": HierarchicalVAE, "residual_unet": ResidualUNet}


def build_model(architecture: str, config: dict[str, Any], *, seed: int) -> torch.nn.Module:
    """A denoising model with weights drawn from ``seed`` (global RNG state untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DENOISING_MODELS[architecture](**config)


def from_bundle(bundle: dict[str, Any]) -> torch.nn.Module:
    """Rebuild a denoising model from its bundle, in eval mode on the CPU."""
    if bundle.get("architecture") not in DENOISING_MODELS:
        raise ValueError(f"not a denoising model bundle: architecture "
                         f"{bundle.get('architecture')!r}, expected one of {sorted(DENOISING_MODELS)}")
    model = build_model(bundle["architecture"], bundle["config"], seed=0)
    model.load_state_dict(bundle["state_dict"])
    return model.eval()


def _clean_images(data: DataParams, name: str, count: int, folders: dict[str, Any],
                  rng: np.random.Generator) -> np.ndarray:
    """``count`` clean ``[N, N]`` images of data set ``name`` (for folders: all of them)."""
    size = data.image_size
    if name == "ellipses":
        return ellipse_phantoms(count, size=size, spec=data.ellipses, rng=rng)
    if name == "digits":
        digits, _ = embedded_digits(image_size=8)
        pick = rng.permutation(digits.shape[0])[:count]
        return digit_phantoms(digits[pick, 0], size=size)
    if name == "skimage":
        images = skimage_sample_images(data.sample_images)
        return sample_image_patches(images, count, size=size, patch=data.patch_size, rng=rng)
    folder = name[len(FOLDER_PREFIX):]
    source = f"data/01_raw/images/{folder}/"
    if folder not in folders:
        raise ValueError(f"{source}: no such image folder (found: {sorted(folders)})")
    images = [folders[folder][key] for key in sorted(folders[folder])]
    if not images:
        raise ValueError(f"{source}: the folder holds no PNG/JPEG/TIFF images")
    check_image_stack(images, source=source)
    return fit_to_circle(np.stack(images), size=size)


def make_denoising_images(params: dict[str, Any], image_folders: dict[str, Any]
                          ) -> dict[str, torch.Tensor]:
    """Check every ``denoising`` parameter (a mistake fails here, before training), then make
    the clean train/val/test images ``[M, N, N]`` in [0, 1] of ``data.dataset``.

    A user folder is split in file-name order after a seeded shuffle: test and validation
    first, the rest for training (it must hold more than ``test_size + val_size`` images).
    """
    config = check_params(params).data
    rng = np.random.default_rng(config.seed)
    sizes = {"train": config.train_size, "val": config.val_size, "test": config.test_size}
    if config.dataset.startswith(FOLDER_PREFIX):
        images = _clean_images(config, config.dataset, 0, image_folders, rng)
        needed = config.val_size + config.test_size + 2
        if images.shape[0] < needed:
            raise ValueError(f"data/01_raw/images/{config.dataset[len(FOLDER_PREFIX):]}/ holds "
                             f"{images.shape[0]} images; need at least {needed} "
                             "(val_size + test_size + 2)")
        images = images[rng.permutation(images.shape[0])]
        test, val = images[:config.test_size], images[config.test_size:needed - 2]
        return {"train": torch.from_numpy(images[needed - 2:]), "val": torch.from_numpy(val),
                "test": torch.from_numpy(test)}
    return {part: torch.from_numpy(_clean_images(config, config.dataset, count, image_folders,
                                                 rng)) for part, count in sizes.items()}


def make_figure_images(params: dict[str, Any], image_folders: dict[str, Any]
                       ) -> dict[str, torch.Tensor]:
    """A few held-out clean images ``[K, N, N]`` of every data set in
    ``evaluation.figure_datasets`` (seeded apart from the training data)."""
    config = check_params(params)
    rng = np.random.default_rng(config.data.seed + 10_000)
    count = config.evaluation.figure_images
    return {name: torch.from_numpy(
                _clean_images(config.data, name, count, image_folders, rng)[:count])
            for name in config.evaluation.figure_datasets}


def make_sparse_view_pairs(images: dict[str, torch.Tensor], params: dict[str, Any]
                           ) -> dict[str, Any]:
    """FBP reconstructions of every clean image from each number of views, made by the
    batched operators (on the GPU when there is one).

    Returns:
        ``{"views": [V...], part: {"clean": [M, N, N], "noisy": {V: [M, N, N]}}}`` for part
        in train/val/test; the train part only has ``noise.train_views``, val/test ``views``.
    """
    config = check_params(params)
    device = resolve_device(config.noise.device)
    size = config.data.image_size
    for part, stack in images.items():
        if stack.ndim != 3 or stack.shape[1:] != (size, size):
            raise ValueError(f"{part} images must be [M, {size}, {size}], got "
                             f"{tuple(stack.shape)}")
        if not torch.isfinite(stack).all():
            raise ValueError(f"{part} images hold non-finite values")
    out: dict[str, Any] = {"views": list(config.noise.views),
                           "train_views": list(config.noise.train_views)}
    for part, stack in images.items():
        views = config.noise.train_views if part == "train" else config.noise.views
        noisy = {}
        for v in views:
            operator = SparseViewCT(size, v, device=device)
            noisy[v] = operator.sparse_view(stack.to(device)).cpu()
        out[part] = {"clean": stack.clone(), "noisy": noisy}
    return out


def _training_batches(train: dict[str, Any], batch_size: int):
    """``(epoch, generator) -> batches`` of (clean ``[b, 1, N, N]``, noisy ``[b, 1, N, N]``,
    view ``[b]``), every noisy image at a view count drawn per image from the training views
    (``view``: its index among the sorted training views)."""
    clean = train["clean"]
    noisy = torch.stack([train["noisy"][v] for v in sorted(train["noisy"])])  # [V, M, N, N]
    count = clean.shape[0]

    def batches(epoch: int, generator: torch.Generator):
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            view = torch.randint(0, noisy.shape[0], (idx.shape[0],), generator=generator)
            yield clean[idx][:, None], noisy[view, idx][:, None], view

    return batches, count // batch_size


def _validation_psnr(val: dict[str, Any], denoise) -> dict[str, float]:
    """Mean PSNR over the validation views of ``denoise(noisy [M, 1, N, N])``."""
    clean = val["clean"]
    scores = [image_scores(clip_unit(denoise(val["noisy"][v][:, None])[:, 0]), clean)["psnr"]
              for v in sorted(val["noisy"])]
    return float(np.mean(scores))


def _cpu_bf16_forward(model: nn.Module, *, enabled: bool, device: str
                      ) -> tuple[nn.Module, Callable[..., Any]]:
    """``(model, forward)`` for training; ``forward(fn, inputs, *args)`` calls
    ``fn(inputs, *args)``, with ``fn`` the model or one of its methods (``net.decode`` takes a
    dict of codes). When ``enabled`` and training on the CPU, the model and image inputs
    ``[B, 1, N, N]`` are channels-last and the call runs under bf16 autocast, so that oneDNN
    uses its bf16 kernels (AMX / AVX-512; about 3x faster per step here); losses stay
    float32."""
    if not (enabled and resolve_device(device).type == "cpu"):
        return model, lambda fn, inputs, *args: fn(inputs, *args)

    def forward(fn: Callable[..., Any], inputs: Any, *args: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if isinstance(inputs, Tensor):
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            return fn(inputs, *args)

    return model.to(memory_format=torch.channels_last), forward


def hvae_batch_loss(net: HierarchicalVAE, clean: Tensor, noisy: Tensor, views: Tensor,
                    generator: torch.Generator, *, loss: HVAELossParams, beta: float,
                    forward: Callable[..., Any]) -> Tensor:
    """The HVAE's training loss (scalar) on clean images ``[B, 1, N, N]`` and their noisy
    versions ``[B, 1, N, N]`` (``views`` ``[B]``: the view count of each, as any label):
    negative ELBO of both (``beta`` already warmed up), the signal and noise triplets at each
    latent level, and, when their weights are > 0, the swap terms:

    - removal (``loss.swap_weight``): signal parts of noisy image ``i`` + noise parts of
      another clean image of the batch, decoded, against clean image ``i``;
    - injection (``loss.inject_weight``): signal parts of clean image ``i`` + noise parts of
      another noisy image at the same view count, decoded, against noisy image ``i``.

    ``forward`` is :func:`_cpu_bf16_forward`'s.
    """
    batch = clean.shape[0]
    both = torch.cat([clean, noisy])
    out = forward(net, both, generator)
    total = negative_elbo(out.reconstruction, both, out.kl(), std=loss.likelihood_std,
                          beta=beta, likelihood=loss.likelihood)
    negatives = derangement(batch, generator)
    codes = {level: q.mean for level, q in out.posteriors.items()}
    for signal, noise in net.split(codes).values():
        signal_loss, noise_loss = signal_noise_triplet_losses(
            signal, noise, negatives, signal_margin=loss.signal_margin,
            noise_margin=loss.noise_margin, normalize=loss.normalize_codes)
        total = total + (loss.signal_weight * signal_loss
                         + loss.noise_weight * noise_loss) / len(codes)
    # Posterior means, not samples: the test-time swaps (swap_decode) decode means, so these
    # terms train the very maps that remove and inject the noise. Donors are drawn only when a
    # term is on, so that weights of 0 train exactly as before.
    nll = functools.partial(swap_consistency_loss, std=loss.likelihood_std,
                            likelihood=loss.likelihood)
    if loss.swap_weight > 0:
        # a random other clean image, never the image's own clean version (whose noise parts
        # would make this the own decode of the clean image)
        donors = derangement(batch, generator)
        noisy_rows = batch + torch.arange(batch)
        removed = forward(net.decode, cross_swap_codes(net, codes, noisy_rows, donors))
        total = total + loss.swap_weight * nll(removed, clean)
    if loss.inject_weight > 0:
        # as at test time, the donor has the same view count (another image's streaks)
        rows, donors = group_derangement(views.cpu(), generator)
        if rows.numel():
            injected = forward(net.decode, cross_swap_codes(net, codes, rows, batch + donors))
            total = total + loss.inject_weight * nll(injected, noisy[rows])
    return total


def train_hvae(pairs: dict[str, Any], params: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train the hierarchical VAE on clean and sparse-view images: negative ELBO (KL warm-up)
    on both, plus, at both latent levels, the signal triplet (clean, its noisy version,
    another clean image) and the noise triplet (noisy, another noisy, the anchor's clean),
    plus the swap-consistency terms for removal and injection (``loss.swap_weight``,
    ``loss.inject_weight``; see :func:`hvae_batch_loss`).

    Validation: PSNR of the swap (noise parts from other clean validation images) -> ``val_psnr``.
    """
    config = check_params(params)
    hvae = config.hvae
    seed_everything(hvae.fit.seed)
    model_config = {"image_size": config.data.image_size, **hvae.model.config()}
    model: HierarchicalVAE = build_model("hvae", model_config, seed=hvae.fit.seed)
    batches, steps_per_epoch = _training_batches(pairs["train"], hvae.batch_size)
    warmup_steps = int(hvae.loss.kl_warmup_fraction * hvae.fit.epochs * steps_per_epoch)
    loss_params = hvae.loss
    step = [0]
    model, forward = _cpu_bf16_forward(model, enabled=hvae.cpu_bf16, device=hvae.fit.device)

    def loss_fn(net, batch, generator):
        clean, noisy, views = batch
        beta = loss_params.beta * kl_warmup(step[0], warmup_steps=warmup_steps)
        step[0] += 1
        return hvae_batch_loss(net, clean, noisy, views, generator, loss=loss_params, beta=beta,
                               forward=forward)

    val = pairs["val"]
    donors = val["clean"].roll(1, dims=0)[:, None]  # another validation image each

    def validate(net) -> dict[str, float]:
        return {"val_psnr": _validation_psnr(val, lambda noisy: swap_decode(net, noisy, donors))}

    with torch_threads(hvae.num_threads):
        result = fit(model, loss_fn=loss_fn, batches=batches, validate=validate,
                     config=replace(hvae.fit, name="denoising_hvae"))
    bundle = to_bundle(result.model, "hvae", model_config)
    return bundle, result.history, history_as_metric_steps(result.history,
                                                            prefix="denoising_hvae")


def train_unet(pairs: dict[str, Any], params: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Train the residual U-Net on (noisy, clean) pairs with the mean squared error."""
    config = check_params(params).unet
    seed_everything(config.fit.seed)
    model_config = config.model.config()
    model = build_model("residual_unet", model_config, seed=config.fit.seed)
    batches, _ = _training_batches(pairs["train"], config.batch_size)
    model, forward = _cpu_bf16_forward(model, enabled=config.cpu_bf16, device=config.fit.device)

    def loss_fn(net, batch, generator):
        clean, noisy, _ = batch
        return (forward(net, noisy).float() - clean).square().mean()

    val = pairs["val"]

    def validate(net) -> dict[str, float]:
        return {"val_psnr": _validation_psnr(val, lambda noisy: apply_in_batches(net, noisy))}

    with torch_threads(config.num_threads):
        result = fit(model, loss_fn=loss_fn, batches=batches, validate=validate,
                     config=replace(config.fit, name="denoising_unet"))
    bundle = to_bundle(result.model, "residual_unet", model_config)
    return bundle, result.history, history_as_metric_steps(result.history,
                                                            prefix="denoising_unet")


def _donor_indices(count: int, pool: int, generator: torch.Generator) -> torch.Tensor:
    """One random donor (index into the first ``pool`` training images) per test image."""
    return torch.randint(0, pool, (count,), generator=generator)


def evaluate_denoising(pairs: dict[str, Any], hvae_bundle: dict[str, Any],
                       unet_bundle: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """PSNR/SSIM of every method on the test set for each number of views.

    - ``fbp``: the sparse-view FBP itself; ``tv``: TV-Chambolle with the weight that scores best
      on the validation set; ``unet``: the residual U-Net;
    - ``hvae_swap``: the noisy image's signal parts decoded with the noise parts of a random
      clean training image (not chosen by quality); ``hvae_own``: its own code decoded;
    - ``hvae_inject``: a clean image's signal parts with the noise parts of a random noisy
      training image at the same view count, scored against the true noisy version of the
      clean image; ``clean_as_noisy``: the clean image itself scored against it.

    Denoised outputs are clipped to [0, 1]; injected noise is not clipped.
    """
    config = check_params(params)
    hvae, unet = from_bundle(hvae_bundle), from_bundle(unet_bundle)
    train, val, test = pairs["train"], pairs["val"], pairs["test"]
    clean = test["clean"]
    generator = torch.Generator().manual_seed(config.evaluation.seed)
    pool = config.data.donor_pool
    metrics: dict[str, float] = {}

    def record(method: str, v: int, scores: dict[str, float], keys=("psnr", "ssim")) -> None:
        for key in keys:
            metrics[f"denoise.{method}.v{v}.{key}"] = scores[key]

    with torch_threads(config.hvae.num_threads):
        for v in config.noise.views:
            noisy = test["noisy"][v]
            record("fbp", v, image_scores(clip_unit(noisy), clean))
            weight = max(config.tv.weights, key=lambda w: image_scores(
                clip_unit(tv_denoise(val["noisy"][v], weight=w)), val["clean"])["psnr"])
            metrics[f"denoise.tv.v{v}.weight"] = weight
            record("tv", v, image_scores(clip_unit(tv_denoise(noisy, weight=weight)), clean))
            record("unet", v, image_scores(clip_unit(apply_in_batches(unet, noisy[:, None])[:, 0]),
                                           clean))
            donors = train["clean"][_donor_indices(clean.shape[0], pool, generator)]
            swapped = swap_decode(hvae, noisy[:, None], donors[:, None])[:, 0]
            record("hvae_swap", v, image_scores(clip_unit(swapped), clean))
            record("hvae_own", v, image_scores(clip_unit(own_decode(hvae, noisy[:, None])[:, 0]),
                                               clean))
            donor_views = v if v in train["noisy"] else _nearest(v, list(train["noisy"]))
            noisy_donors = train["noisy"][donor_views][
                _donor_indices(clean.shape[0], pool, generator)]
            injected = swap_decode(hvae, clean[:, None], noisy_donors[:, None])[:, 0]
            record("hvae_inject", v, image_scores(injected, noisy), keys=("psnr",))
            record("clean_as_noisy", v, image_scores(clean, noisy), keys=("psnr",))
    return metrics


def _nearest(v: int, candidates: list[int]) -> int:
    return min(candidates, key=lambda c: abs(c - v))


def plot_denoising_figure(figure_images: dict[str, torch.Tensor], train_pairs: dict[str, Any],
                          hvae_bundle: dict[str, Any], params: dict[str, Any], *,
                          dataset: str) -> Figure:
    """The classic columns for a few images of ``dataset``: noisy, its reconstruction, clean,
    its reconstruction, noise removed by swap, noise injected by swap, true noisy of clean.

    Row ``i``'s noisy image is the sparse-view version of clean image ``i + 1`` (another
    image), so removal and injection are shown on different images, as in the paper's figure.
    """
    config = check_params(params)
    if dataset not in figure_images:
        raise ValueError(f"no figure images for '{dataset}'; evaluation.figure_datasets is "
                         f"{sorted(figure_images)}")
    v = config.evaluation.figure_views
    hvae = from_bundle(hvae_bundle)
    clean = figure_images[dataset]
    operator = SparseViewCT(config.data.image_size, v)
    true_noisy = operator.sparse_view(clean)
    noisy = true_noisy.roll(-1, dims=0)
    generator = torch.Generator().manual_seed(config.evaluation.seed)
    train = train_pairs
    pool = config.data.donor_pool
    clean_donors = train["clean"][_donor_indices(clean.shape[0], pool, generator)][:, None]
    donor_views = v if v in train["noisy"] else _nearest(v, list(train["noisy"]))
    noisy_donors = train["noisy"][donor_views][
        _donor_indices(clean.shape[0], pool, generator)][:, None]
    with torch_threads(config.hvae.num_threads):
        columns = {
            "noisy": noisy,
            "noisy recon.": own_decode(hvae, noisy[:, None])[:, 0],
            "clean": clean,
            "clean recon.": own_decode(hvae, clean[:, None])[:, 0],
            "noise removed (swap)": swap_decode(hvae, noisy[:, None], clean_donors)[:, 0],
            "noise injected (swap)": swap_decode(hvae, clean[:, None], noisy_donors)[:, 0],
            "true noisy of clean": true_noisy,
        }
    trained_on = config.data.dataset
    return swap_figure({k: c.numpy() for k, c in columns.items()},
                       title=f"{dataset}: sparse-view CT, {v} views (HVAE trained on "
                             f"{trained_on})")


def write_denoising_report(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """The flat ``denoising_metrics`` report and the same shaped for MLflow."""
    report = {name: float(value) for name, value in sorted(metrics.items())}
    bad = [name for name, value in report.items() if not np.isfinite(value)]
    if bad:
        raise ValueError(f"non-finite metrics: {bad}")
    return report, final_metrics_as_steps(report)




def select_train_pairs(pairs: dict[str, Any]) -> dict[str, Any]:
    """The training part of the pairs (the figures draw their swap donors from it)."""
    return pairs["train"]
