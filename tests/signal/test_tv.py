import numpy as np
import pytest
import torch
from skimage.restoration import denoise_tv_chambolle

from contrastive_signals.signal.tv import tv_denoise


def test_tv_denoise_applies_chambolle_to_each_image():
    images = torch.from_numpy(np.random.default_rng(0).random((3, 12, 12)))
    out = tv_denoise(images, weight=0.1)
    for k in range(3):
        np.testing.assert_allclose(out[k].numpy(), denoise_tv_chambolle(images[k].numpy(),
                                                                        weight=0.1))
    assert out.dtype == images.dtype


def test_tv_denoise_rejects_bad_input():
    with pytest.raises(ValueError, match="weight"):
        tv_denoise(torch.zeros(1, 4, 4), weight=0.0)
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        tv_denoise(torch.zeros(4, 4), weight=0.1)
