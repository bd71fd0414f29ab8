"""Total-variation denoising of image batches (scikit-image's Chambolle algorithm)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def tv_denoise(images: Tensor, *, weight: float) -> Tensor:
    """``denoise_tv_chambolle`` applied to each image of ``[B, H, W]`` -> ``[B, H, W]``."""
    from skimage.restoration import denoise_tv_chambolle

    if images.ndim != 3:
        raise ValueError(f"images must be [B, H, W], got {tuple(images.shape)}")
    if not weight > 0:
        raise ValueError(f"weight must be > 0, got {weight}")
    array = images.detach().cpu().double().numpy()
    out = np.stack([denoise_tv_chambolle(image, weight=weight) for image in array])
    return torch.from_numpy(out).to(images.dtype)
