"""Denoising scores: validation PSNR over view counts, the TV weight choice, and the scores of
every denoiser per view count."""

import pytest
import torch

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.data.sparse_view_ct import sparse_view_pairs
from contrastive_signals.metrics.denoising import (
    TVParams,
    best_tv_weight,
    denoiser_psnr,
    mean_view_psnr,
    sparse_view_scores,
    split_scores,
    streak_alignment,
    swap_psnr,
)
from contrastive_signals.metrics.image_quality import clip_unit, image_scores
from contrastive_signals.models.hvae import swap_decode
from contrastive_signals.models.registry import build_model
from contrastive_signals.signal.tv import tv_denoise
from tests.methods.pairs import SIZE, VIEWS, tiny_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _hvae():
    return build_model("hvae", {"image_size": SIZE, "channels": (4, 8, 8), "spatial_signal": 2,
                                "spatial_noise": 1, "global_signal": 4, "global_noise": 2},
                       seed=0)


def test_mean_view_psnr_of_the_identity_is_the_mean_fbp_psnr():
    part = tiny_pairs(count=4)
    expected = [image_scores(clip_unit(part["noisy"][v]), part["clean"])["psnr"] for v in VIEWS]
    assert mean_view_psnr(part, lambda noisy: noisy) == pytest.approx(sum(expected) / 2)


def test_validation_scores_of_the_unet_and_the_hvae_swap():
    part = tiny_pairs(count=4)
    unet = build_model("residual_unet", {"base_channels": 4, "depth": 2}, seed=0)
    assert denoiser_psnr(unet, part) == pytest.approx(mean_view_psnr(part, lambda x: x))
    hvae = _hvae()
    donors = part["clean"].roll(1, dims=0)[:, None]
    expected = mean_view_psnr(part, lambda noisy: swap_decode(hvae, noisy, donors))
    assert swap_psnr(hvae, part) == expected


def test_best_tv_weight_is_the_best_psnr_of_a_loop():
    part = tiny_pairs(count=4)
    noisy, clean = part["noisy"][4], part["clean"]
    weights = (0.01, 0.1, 0.5)
    psnr = {w: image_scores(clip_unit(tv_denoise(noisy, weight=w)), clean)["psnr"]
            for w in weights}
    assert best_tv_weight(noisy, clean, weights) == max(psnr, key=psnr.get)


@pytest.mark.parametrize("weights", [[], [0.1, 0.0], [-1.0]])
def test_bad_tv_weights_are_named(weights):
    with pytest.raises(ParameterError, match=r"denoising.tv: weights must be a non-empty list"):
        from_params(TVParams, {"weights": weights}, path="denoising.tv")


def test_every_method_is_scored_at_every_view_count_and_donors_are_seeded():
    images = {part: tiny_pairs(count=6, seed=k)["clean"]
              for k, part in enumerate(("train", "val", "test"))}
    pairs = sparse_view_pairs(images, size=SIZE, views=VIEWS, train_views=(4,), device="cpu")
    hvae = _hvae().eval()
    unet = build_model("residual_unet", {"base_channels": 4, "depth": 2}, seed=0).eval()

    def scores(seed):
        return sparse_view_scores(pairs, hvae=hvae, unet=unet, views=VIEWS, tv_weights=(0.05,),
                                  donor_pool=4, generator=torch.Generator().manual_seed(seed))

    metrics = scores(0)
    expected = {f"denoise.{m}.v{v}.{k}" for m in ("fbp", "tv", "unet", "hvae_swap", "hvae_own")
                for v in VIEWS for k in ("psnr", "ssim")}
    expected |= {f"denoise.{m}.v{v}.psnr" for m in ("hvae_inject", "clean_as_noisy")
                 for v in VIEWS}
    expected |= {f"denoise.tv.v{v}.weight" for v in VIEWS}
    assert set(metrics) == expected
    # the U-Net starts as the identity: it scores as the FBP
    assert metrics["denoise.unet.v8.psnr"] == pytest.approx(metrics["denoise.fbp.v8.psnr"])
    assert scores(0) == metrics
    assert scores(1)["denoise.hvae_swap.v4.psnr"] != metrics["denoise.hvae_swap.v4.psnr"]


def test_streak_alignment_is_the_mean_cosine_with_the_streaks():
    streaks = torch.tensor([[[1.0, 0.0], [0.0, -1.0]], [[0.0, 2.0], [0.0, 0.0]]])
    effects = {"streaks": streaks, "noise part": 3 * streaks,  # the streaks themselves: 1
               "signal part": torch.stack([-streaks[0], torch.ones(2, 2)])}
    scores = streak_alignment(effects)
    assert scores["noise_part_cos"] == pytest.approx(1.0)
    # image 0: opposite (-1); image 1: <(0,2,0,0), (1,1,1,1)> / (2 * 2) = 0.5
    assert scores["signal_part_cos"] == pytest.approx((-1.0 + 0.5) / 2)


def test_split_scores_name_both_parts_at_every_view_count():
    scores = split_scores(tiny_pairs(), _hvae().eval(), VIEWS)
    assert set(scores) == {f"denoise.split.v{v}.{p}_part_cos" for v in VIEWS
                           for p in ("noise", "signal")}
    assert all(-1.0 <= value <= 1.0 for value in scores.values())
