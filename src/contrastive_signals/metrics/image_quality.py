"""Image quality: per-image PSNR and SSIM (torchmetrics), averaged over a test set.

torchmetrics is imported where it is used: its image package pulls in torchvision,
transformers and torch's compiler (about 3 s on 2 idle cores, 10 s loaded), which the
denoising inference model, importing :func:`clip_unit` from here, does not need.
"""

from __future__ import annotations

from torch import Tensor


def _check(estimate: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    if estimate.shape != reference.shape or estimate.ndim != 3:
        raise ValueError(f"estimate and reference must both be [B, H, W]; got "
                         f"{tuple(estimate.shape)} and {tuple(reference.shape)}")
    return estimate[:, None].double(), reference[:, None].double()


def psnr_per_image(estimate: Tensor, reference: Tensor, *, data_range: float = 1.0) -> Tensor:
    """PSNR in dB of each image ``[B, H, W]`` against its reference -> ``[B]``."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    est, ref = _check(estimate, reference)
    return peak_signal_noise_ratio(est, ref, data_range=data_range, reduction="none",
                                   dim=(1, 2, 3)).float()


def ssim_per_image(estimate: Tensor, reference: Tensor, *, data_range: float = 1.0) -> Tensor:
    """SSIM (Gaussian window 11, sigma 1.5) of each image against its reference -> ``[B]``."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    est, ref = _check(estimate, reference)
    return structural_similarity_index_measure(est, ref, data_range=data_range,
                                               reduction="none").float()


def image_scores(estimate: Tensor, reference: Tensor, *, data_range: float = 1.0
                 ) -> dict[str, float]:
    """``{"psnr": mean dB, "ssim": mean SSIM}`` over the images ``[B, H, W]``."""
    return {"psnr": float(psnr_per_image(estimate, reference, data_range=data_range).mean()),
            "ssim": float(ssim_per_image(estimate, reference, data_range=data_range).mean())}


def clip_unit(images: Tensor) -> Tensor:
    """Clip to [0, 1], the range of the clean images (applied to every denoiser's output)."""
    return images.clamp(0.0, 1.0)



