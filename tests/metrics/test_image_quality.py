import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from contrastive_signals.metrics.image_quality import (
    clip_unit,
    image_scores,
    mean_psnr,
    psnr_per_image,
    ssim_per_image,
)


def _pair():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 64, 64))
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
    return torch.from_numpy(noisy), torch.from_numpy(clean)


def test_psnr_and_ssim_match_skimage():
    noisy, clean = _pair()
    psnr, ssim = psnr_per_image(noisy, clean), ssim_per_image(noisy, clean)
    for k in range(3):
        assert psnr[k].item() == pytest.approx(peak_signal_noise_ratio(
            clean[k].numpy(), noisy[k].numpy(), data_range=1.0), rel=1e-5)
        assert ssim[k].item() == pytest.approx(structural_similarity(
            clean[k].numpy(), noisy[k].numpy(), data_range=1.0, gaussian_weights=True,
            sigma=1.5, use_sample_covariance=False), abs=5e-3)  # torchmetrics crops borders
    scores = image_scores(noisy, clean)
    assert scores["psnr"] == pytest.approx(psnr.mean().item())
    assert mean_psnr(noisy, clean) == scores["psnr"]


def test_float32_ssim_equals_float64_torchmetrics():
    """SSIM runs in float32 for speed; the figure equals torchmetrics' float64 one to 1e-6."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    noisy, clean = _pair()
    reference = structural_similarity_index_measure(noisy[:, None], clean[:, None],
                                                    data_range=1.0, reduction="none")
    assert reference.dtype == torch.float64
    assert torch.allclose(ssim_per_image(noisy, clean).double(), reference, atol=1e-6, rtol=0)


def test_psnr_by_hand_and_clip():
    clean = torch.zeros(1, 4, 4)
    assert psnr_per_image(clean + 0.1, clean).item() == pytest.approx(20.0, rel=1e-5)
    assert clip_unit(torch.tensor([-1.0, 0.5, 2.0])).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        psnr_per_image(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
