"""Vision Transformer: shapes, both attention paths, attention maps, bad sizes, registry."""

import pytest
import torch

from contrastive_signals.models.registry import build_model, from_bundle, get_entry, to_bundle
from contrastive_signals.models.vit import VisionTransformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"embedding_dim": 16, "depth": 2, "heads": 2, "mlp_ratio": 2.0}


def _images(b: int = 3, c: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("in_channels,image_size,patch_size", [(1, 28, 4), (3, 28, 7),
                                                               (2, 12, 3)])
def test_shapes(pooling, in_channels, image_size, patch_size):
    model = VisionTransformer(in_channels, image_size, patch_size, pooling=pooling, **SMALL)
    images = _images(3, in_channels, image_size)
    assert model.embedding_dim == 16
    assert model(images).shape == (3, 16)
    grid = image_size // patch_size
    assert model.attention_maps(images).shape == (3, grid, grid)
    assert model.last_attention(images).shape == (3, 2, 1 + grid ** 2, 1 + grid ** 2)


def test_default_digit_shape():
    model = VisionTransformer().eval()
    assert model(_images()).shape == (3, 64)
    assert model.attention_maps(_images()).shape == (3, 4, 4)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_fused_and_explicit_attention_agree(pooling):
    """The forward with scaled_dot_product_attention equals the explicit softmax path."""
    model = VisionTransformer(pooling=pooling, **SMALL).eval()
    images = _images()
    tokens = model._tokens(images)
    fused = explicit = tokens
    for block in model.blocks:
        fused = block(fused)
        explicit = block.forward_with_weights(explicit)[0]
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model._pool(explicit), model(images), rtol=1e-5, atol=1e-5)


def test_attention_rows_sum_to_one_and_maps_with_cls_self():
    model = VisionTransformer(patch_size=4, **SMALL).eval()
    images = _images(4)
    with torch.no_grad():
        weights = model.last_attention(images)
        maps = model.attention_maps(images)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    cls_self = weights[:, :, 0, 0].mean(1)
    torch.testing.assert_close(maps.sum((1, 2)) + cls_self, torch.ones(4))
    assert (maps >= 0).all() and (maps <= 1).all()
    # Row-major patches: patch (r, c) is token 1 + r * grid + c.
    torch.testing.assert_close(maps[:, 2, 5], weights[:, :, 0, 1 + 2 * 7 + 5].mean(1))


def test_batch_independent_and_deterministic():
    model = build_model("vit", SMALL, seed=3).eval()
    images = _images(5)
    with torch.no_grad():
        torch.testing.assert_close(model(images)[:2], model(images[:2]), rtol=1e-5, atol=1e-6)
        again = build_model("vit", SMALL, seed=3).eval()(images)
        assert torch.equal(model(images), again)
        assert not torch.equal(build_model("vit", SMALL, seed=4).eval()(images), again)


def test_dropout_from_generator_is_reproducible():
    model = VisionTransformer(dropout=0.3, **SMALL).train()
    images = _images()
    first = model(images, generator=torch.Generator().manual_seed(1))
    second = model(images, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, second)
    assert not torch.equal(first, model(images, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(model.eval()(images), model(images))


def test_gradients_reach_every_parameter():
    model = VisionTransformer(**SMALL)
    model(_images()).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("kwargs,match", [
    ({"image_size": 28, "patch_size": 5}, r"image_size \(28\) must be a multiple of patch_size \(5\)"),
    ({"image_size": 3, "patch_size": 4}, r"image_size \(3\).*patch_size \(4\)"),
    ({"embedding_dim": 30, "heads": 4}, r"heads \(4\).*embedding_dim \(30\)"),
    ({"heads": 0}, r"heads \(0\)"),
    ({"pooling": "max"}, "pooling"),
    ({"depth": 0}, r"depth \(0\)"),
    ({"mlp_ratio": 0.0}, "mlp_ratio"),
    ({"dropout": 1.0}, "dropout"),
])
def test_bad_parameters_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VisionTransformer(**kwargs)


def test_wrong_input_shape():
    model = VisionTransformer(**SMALL)
    with pytest.raises(ValueError, match=r"images must be \[B, 1, 28, 28\]"):
        model(_images(2, 1, 32))
    with pytest.raises(ValueError, match="images must be"):
        model(torch.randn(2, 28, 28))


def test_registry_entry_and_bundle_round_trip():
    entry = get_entry("vit", modality="image", outputs=("instance",))
    assert entry.embedding_dim({}) == VisionTransformer().embedding_dim
    assert entry.embedding_dim(SMALL) == 16
    config = {"in_channels": 1, "patch_size": 7, **SMALL}
    model = build_model("vit", config, seed=0).eval()
    restored = from_bundle(to_bundle(model, "vit", config), modality="image")
    images = _images()
    assert torch.equal(restored(images), model(images))
