"""The `denoising` pipeline on tiny parameters (SequentialRunner, in-memory catalog), and its
bad-input errors, raised by the first node before any training."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError
from contrastive_signals.pipelines.denoising import create_pipeline
from contrastive_signals.pipelines.denoising.nodes import (
    make_denoising_images,
    write_denoising_report,
)
from contrastive_signals.training.device import torch_threads
from tests.pipelines.kept_memory import run_in_memory as run

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
    expected |= {f"denoise.split.v{v}.{p}_part_cos" for v in views for p in ("noise", "signal")}
    assert set(metrics) == expected
    for name, value in metrics.items():
        assert np.isfinite(value), name
        if name.endswith((".ssim", "_cos")):
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
    parts = outputs["denoising_latent_parts_figure"]  # 2 images x (clean, noisy, 3 effects)
    assert isinstance(parts, Figure) and len(parts.axes) == 2 * 5
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
    ("hvae", "cpu_bf16", "yes", r"denoising.hvae: cpu_bf16 must be true, false or auto, got .yes."),
    ("unet", "cpu_channels_last", "yes", r"denoising.unet.cpu_channels_last must be true or false"),
    ("hvae.loss", "swap_weight", -0.5, r"denoising.hvae.loss: swap_weight must be >= 0"),
    ("hvae.loss", "swap_weight", float("nan"), r"denoising.hvae.loss.swap_weight must be a finite number"),
    ("hvae.loss", "inject_weight", -1.0, r"denoising.hvae.loss: inject_weight must be >= 0"),
    ("hvae.loss", "kl_warmup_fraction", 2.0, r"denoising.hvae.loss: kl_warmup_fraction must"),
    ("unet", "batch_size", 1, r"denoising.unet: batch_size must be >= 2"),
    ("unet.model", "depth", 0, r"denoising.unet.model: base_channels and depth must be >= 1"),
    ("unet.model", "depth", 6, r"data.image_size \(32\) must be divisible by 2\*\*unet.model"),
    ("tv", "weights", [], r"denoising.tv: weights must be a non-empty list"),
    ("data", "dataset", "folder:", r"denoising.data: dataset must be one of"),
])
def test_bad_parameters_fail_before_training(section, key, value, message):
    params = _tiny_params()
    target = params
    for part in section.split("."):
        target = target[part]
    target[key] = value
    with pytest.raises(ParameterError, match=message):
        make_denoising_images(params, {})


def test_report_rejects_non_finite_metrics():
    with pytest.raises(ValueError, match="non-finite"):
        write_denoising_report({"denoise.fbp.v8.psnr": float("nan")})
