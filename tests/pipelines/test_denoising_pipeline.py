"""The `denoising` pipeline on tiny parameters (SequentialRunner, in-memory catalog), and its
bad-input errors, raised by the first node before any training."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError
from contrastive_signals.losses.elbo import (
    derangement,
    group_derangement,
    negative_elbo,
    signal_noise_triplet_losses,
    swap_consistency_loss,
)
from contrastive_signals.models.hvae import HierarchicalVAE, cross_swap_codes
from contrastive_signals.pipelines.denoising import create_pipeline
from contrastive_signals.pipelines.denoising.nodes import (
    _cpu_bf16_forward,
    hvae_batch_loss,
    make_denoising_images,
    make_sparse_view_pairs,
    write_denoising_report,
)
from contrastive_signals.pipelines.denoising.params import HVAELossParams
from contrastive_signals.training.device import torch_threads
from tests.pipelines.test_pipelines import run

CONF = Path(__file__).resolve().parents[2] / "conf"
METHODS = ("fbp", "tv", "unet", "hvae_swap", "hvae_own")


def _tiny_params() -> dict:
    """conf/base merged with conf/test (as `--env=test` does, one level of dicts deep)."""
    base = yaml.safe_load((CONF / "base/parameters_denoising.yml").read_text())["denoising"]
    test = yaml.safe_load((CONF / "test/parameters_denoising.yml").read_text())["denoising"]

    def merge(a, b):
        out = copy.deepcopy(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
        return out

    params = merge(base, test)
    params["hvae"]["fit"]["device"] = params["unet"]["fit"]["device"] = "cpu"
    params["noise"]["device"] = "cpu"
    return params


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def outputs():
    with torch_threads(1):
        return run(create_pipeline(), {"denoising_image_folders": {}},
                   {"denoising": _tiny_params()},
                   keep=("denoising_pairs", "denoising_scores", "denoising_hvae.history"))


def test_pipeline_reports_every_method_and_view_count(outputs):
    metrics = outputs["denoising_metrics"]
    views = _tiny_params()["noise"]["views"]
    expected = {f"denoise.{m}.v{v}.{k}" for m in METHODS for v in views for k in ("psnr", "ssim")}
    expected |= {f"denoise.{m}.v{v}.psnr" for m in ("hvae_inject", "clean_as_noisy")
                 for v in views}
    expected |= {f"denoise.tv.v{v}.weight" for v in views}
    assert set(metrics) == expected
    for name, value in metrics.items():
        assert np.isfinite(value), name
        if name.endswith(".ssim"):
            assert -1.0 <= value <= 1.0
    # More views, better FBP; the reference is scored against the true noisy image.
    assert metrics[f"denoise.fbp.v{views[1]}.psnr"] > metrics[f"denoise.fbp.v{views[0]}.psnr"]
    mlflow = outputs["denoising_metrics_mlflow"]
    assert mlflow[f"denoise.fbp.v{views[0]}.psnr"]["value"] == metrics[
        f"denoise.fbp.v{views[0]}.psnr"]


def test_pipeline_makes_histories_figures_and_pairs(outputs):
    assert set(outputs["denoising_hvae.history"]) >= {"train_loss", "val_psnr", "lr"}
    assert len(outputs["denoising_hvae.history"]["train_loss"]) == 2
    for name in ("ellipses", "digits", "skimage"):
        figure = outputs[f"denoising_{name}_figure"]
        assert isinstance(figure, Figure) and len(figure.axes) == 2 * 7
    pairs = outputs["denoising_pairs"]
    assert pairs["test"]["clean"].shape == (8, 32, 32)
    assert set(pairs["test"]["noisy"]) == {8, 16}


def test_same_seed_same_metrics(outputs):
    again = run(create_pipeline(), {"denoising_image_folders": {}}, {"denoising": _tiny_params()})
    assert again["denoising_metrics"] == outputs["denoising_metrics"]


def _folder(images):
    return {"mine": {f"{k:03d}.png": image for k, image in enumerate(images)}}


def test_user_folder_is_a_data_set():
    params = _tiny_params()
    params["data"].update(dataset="folder:mine", val_size=2, test_size=2)
    rng = np.random.default_rng(0)
    folders = _folder([rng.random((20, 20)) for _ in range(7)])
    snapshot = copy.deepcopy(folders)
    images = make_denoising_images(params, folders)
    assert {k: v.shape[0] for k, v in images.items()} == {"train": 3, "val": 2, "test": 2}
    assert images["train"].shape[1:] == (32, 32)
    np.testing.assert_array_equal(folders["mine"]["000.png"], snapshot["mine"]["000.png"])


@pytest.mark.parametrize(("folders", "message"), [
    ({"mine": {}}, r"data/01_raw/images/mine/: the folder holds no PNG/JPEG/TIFF images"),
    ({}, r"data/01_raw/images/mine/: no such image folder"),
    (_folder([np.zeros((8, 8))] * 3 + [np.zeros((9, 8))] * 4), "mixed sizes"),
    (_folder([np.zeros((8, 8))] * 6 + [np.full((8, 8), np.inf)]), "non-finite"),
])
def test_bad_image_folders_fail_before_training(folders, message):
    params = _tiny_params()
    params["data"].update(dataset="folder:mine", val_size=2, test_size=2)
    with pytest.raises(ValueError, match=message):
        make_denoising_images(params, folders)


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("noise", "views", [1, 8], r"denoising: noise.views: n_views must be an integer in \[2"),
    ("noise", "views", [8, 33], r"noise.views: n_views must be an integer in \[2, image size"),
    ("noise", "train_views", [64], r"noise.train_views"),
    ("data", "dataset", "mnist", r"denoising.data: dataset must be one of"),
    ("data", "image_size", 30, r"denoising.data: image_size must be a multiple of 8"),
    ("hvae", "batch_size", 1, r"denoising.hvae: batch_size must be >= 2"),
    ("data", "typo", 1, r"denoising.data: unknown parameter"),
    ("hvae.model", "latent_stride", 3, r"denoising.hvae.model: latent_stride must be 2 or 4"),
    ("hvae.model", "noise_channels", -1, r"denoising.hvae.model: noise_channels must be >= 0"),
    ("hvae.loss", "likelihood", "cauchy", r"denoising.hvae.loss: likelihood must be one of"),
    ("hvae", "cpu_bf16", "yes", r"denoising.hvae: cpu_bf16 must be true or false"),
    ("hvae.loss", "swap_weight", -0.5, r"denoising.hvae.loss: swap_weight must be >= 0"),
    ("hvae.loss", "swap_weight", float("nan"), r"denoising.hvae.loss: swap_weight must be >= 0"),
    ("hvae.loss", "inject_weight", -1.0, r"denoising.hvae.loss: inject_weight must be >= 0"),
])
def test_bad_parameters_fail_before_training(section, key, value, message):
    params = _tiny_params()
    target = params
    for part in section.split("."):
        target = target[part]
    target[key] = value
    with pytest.raises(ParameterError, match=message):
        make_denoising_images(params, {})


def test_non_finite_or_mis_sized_images_are_rejected_before_the_noise():
    params = _tiny_params()
    good = torch.zeros(4, 32, 32)
    with pytest.raises(ValueError, match="train images hold non-finite"):
        make_sparse_view_pairs({"train": torch.full((4, 32, 32), float("nan"))}, params)
    with pytest.raises(ValueError, match=r"val images must be \[M, 32, 32\]"):
        make_sparse_view_pairs({"train": good, "val": torch.zeros(4, 16, 16)}, params)


def test_report_rejects_non_finite_metrics():
    with pytest.raises(ValueError, match="non-finite"):
        write_denoising_report({"denoise.fbp.v8.psnr": float("nan")})


def _loss_setup(**weights: float):
    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=16, channels=(4, 8, 8), spatial_signal=3, spatial_noise=2,
                            global_signal=5, global_noise=4, latent_stride=2)
    g = torch.Generator().manual_seed(1)
    clean, noisy = torch.rand(4, 1, 16, 16, generator=g), torch.rand(4, 1, 16, 16, generator=g)
    views = torch.tensor([0, 1, 0, 1])
    loss = HVAELossParams(likelihood_std=0.1, beta=0.5, signal_weight=3.0, noise_weight=2.0,
                          signal_margin=1.0, noise_margin=0.5, **weights)
    _, forward = _cpu_bf16_forward(model, enabled=False, device="cpu")
    return model, clean, noisy, views, loss, forward


def _batch_loss(seed: int = 5, **weights: float):
    model, clean, noisy, views, loss, forward = _loss_setup(**weights)
    value = hvae_batch_loss(model, clean, noisy, views, torch.Generator().manual_seed(seed),
                            loss=loss, beta=0.25, forward=forward)
    return model, value


def test_hvae_loss_without_swap_weights_is_the_elbo_plus_triplets():
    """swap weights of 0 give exactly the loss of before the swap terms: negative ELBO +
    triplets at both levels, with the same draws from the generator."""
    model, clean, noisy, _, _, _ = _loss_setup()
    _, value = _batch_loss(swap_weight=0.0, inject_weight=0.0)
    g = torch.Generator().manual_seed(5)
    both = torch.cat([clean, noisy])
    out = model(both, g)
    expected = negative_elbo(out.reconstruction, both, out.kl(), std=0.1, beta=0.25)
    negatives = derangement(4, g)
    codes = {level: q.mean for level, q in out.posteriors.items()}
    for signal, noise in model.split(codes).values():
        s_loss, n_loss = signal_noise_triplet_losses(signal, noise, negatives,
                                                     signal_margin=1.0, noise_margin=0.5)
        expected = expected + (3.0 * s_loss + 2.0 * n_loss) / 2
    torch.testing.assert_close(value, expected)


def _swap_terms_by_hand(model, clean, noisy, views):
    """The removal and injection terms with the loss's own draws from the generator."""
    g = torch.Generator().manual_seed(5)
    out = model(torch.cat([clean, noisy]), g)
    derangement(4, g)                                   # the triplet negatives
    codes = {level: q.mean for level, q in out.posteriors.items()}
    donors = derangement(4, g)
    removed = model.decode(cross_swap_codes(model, codes, 4 + torch.arange(4), donors))
    rows, noisy_donors = group_derangement(views, g)
    injected = model.decode(cross_swap_codes(model, codes, rows, 4 + noisy_donors))
    return (swap_consistency_loss(removed, clean, std=0.1),
            swap_consistency_loss(injected, noisy[rows], std=0.1))


def test_swap_terms_are_weighted_and_decode_the_swapped_means():
    model, clean, noisy, views, _, _ = _loss_setup()
    _, off = _batch_loss()
    _, on = _batch_loss(swap_weight=1.0)
    _, twice = _batch_loss(swap_weight=2.0)
    _, both = _batch_loss(swap_weight=1.0, inject_weight=0.5)
    removal, injection = (t.detach() for t in _swap_terms_by_hand(model, clean, noisy, views))
    assert removal > 0 and injection > 0
    torch.testing.assert_close(on - off, removal, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(twice - off, 2 * removal, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(both - off, removal + 0.5 * injection, rtol=1e-4, atol=1e-6)


def test_swap_term_gradient_reaches_the_decoder_through_the_swapped_code():
    model, clean, noisy, views, _, _ = _loss_setup()
    removal, _ = _swap_terms_by_hand(model, clean, noisy, views)
    removal.backward()
    assert model.decoder_out[-1].weight.grad.abs().sum() > 0
    # ... and the encoder through the noisy images' signal parts and the donors' noise parts
    mean_rows = model.spatial_posterior.weight.grad.view(2, 5, -1)[0]  # 3 signal + 2 noise
    assert mean_rows[:3].abs().sum() > 0 and mean_rows[3:].abs().sum() > 0
    grads = []
    for weight in (0.0, 1.0):
        model, value = _batch_loss(swap_weight=weight)
        value.backward()
        grads.append(model.decoder_out[-1].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])
