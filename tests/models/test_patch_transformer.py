"""Patch Transformer for series: shapes, mask, patch mapping, determinism, bad parameters."""

import pytest
import torch

from contrastive_signals.methods.base import InstanceEncoder
from contrastive_signals.models.patch_transformer import PatchTransformerEncoder, patch_count
from contrastive_signals.models.registry import build_model, from_bundle, get_entry, to_bundle

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"output_dim": 12, "hidden_dim": 8, "layers": 2, "heads": 2, "patch_len": 4,
         "stride": 4}


def _series(b: int, t: int, c: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, c, generator=torch.Generator().manual_seed(seed))


def _model(in_channels: int = 3, seed: int = 0, **overrides) -> PatchTransformerEncoder:
    return build_model("patch_transformer", {"in_channels": in_channels, **SMALL, **overrides},
                       seed=seed)


@pytest.mark.parametrize("length,patch_len,stride,expected", [
    (16, 4, 4, 4), (17, 4, 4, 5), (3, 4, 4, 1), (4, 4, 4, 1), (16, 8, 4, 3), (17, 8, 4, 4),
    (1, 1, 1, 1)])
def test_patch_count(length, patch_len, stride, expected):
    assert patch_count(length, patch_len, stride) == expected


@pytest.mark.parametrize("t", [16, 17, 3, 40])
@pytest.mark.parametrize("patch_len,stride", [(4, 4), (8, 4), (5, 3)])
def test_shapes_any_length(t, patch_len, stride):
    model = _model(patch_len=patch_len, stride=stride).eval()
    assert model.embedding_dim == model.output_dim == 12
    assert model(_series(2, t, 3)).shape == (2, t, 12)


def test_unequal_lengths_padded_values_change_nothing():
    model = _model().eval()
    x = _series(3, 21, 3)
    mask = torch.ones(3, 21, dtype=torch.bool)
    mask[1, 13:] = False     # mid-patch end
    mask[2, 8:] = False      # patch-aligned end
    out = model(x, mask)
    noisy = x.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), 3) * 100
    noisy[2, 20] = float("nan")
    torch.testing.assert_close(model(noisy, mask), out)
    # Padding that fills whole patches is invisible: those patches are masked out as keys,
    # so the padded series' valid steps match the series encoded on its own.
    alone = model(x[2:3, :8], None)
    torch.testing.assert_close(out[2:3, :8], alone, rtol=1e-5, atol=1e-5)


def test_each_step_takes_its_patch_token():
    model = _model(patch_len=4, stride=4).eval()
    out = model(_series(2, 10, 3))
    for t in range(10):
        torch.testing.assert_close(out[:, t], out[:, (t // 4) * 4])
    assert not torch.equal(out[:, 0], out[:, 4])


def test_channels_are_encoded_with_shared_weights():
    """Channel independence: swapping two channels before the mix swaps their patch tokens,
    so a model whose mixing layer is symmetric in the channels gives the same output."""
    model = _model(in_channels=2).eval()
    with torch.no_grad():
        half = model.mix.weight[:, :8].clone()
        model.mix.weight[:, 8:] = half
    x = _series(2, 12, 2)
    torch.testing.assert_close(model(x), model(x.flip(-1)), rtol=1e-5, atol=1e-6)


def test_deterministic_under_seed_and_dropout_from_generator():
    x, mask = _series(2, 18, 3), torch.ones(2, 18, dtype=torch.bool)
    a, b = _model(seed=5, dropout=0.2).train(), _model(seed=5, dropout=0.2).train()
    out_a = a(x, mask, torch.Generator().manual_seed(7))
    assert torch.equal(out_a, b(x, mask, torch.Generator().manual_seed(7)))
    assert not torch.equal(out_a, a(x, mask, torch.Generator().manual_seed(8)))
    assert torch.equal(a.eval()(x, mask), b.eval()(x, mask))
    assert not torch.equal(_model(seed=6).eval()(x, mask), b(x, mask))


def test_instance_embedding_and_gradients():
    model = _model()
    encoder = InstanceEncoder(model, get_entry("patch_transformer").output)
    x, mask = _series(4, 15, 3), torch.ones(4, 15, dtype=torch.bool)
    mask[0, 9:] = False
    z = encoder(x, mask)
    assert z.shape == (4, 12)
    z.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("overrides,match", [
    ({"stride": 0}, r"stride \(0\)"),
    ({"stride": 5, "patch_len": 4}, r"stride \(5\) <= patch_len \(4\)"),
    ({"hidden_dim": 10, "heads": 4}, r"heads \(4\).*hidden_dim \(10\)"),
    ({"layers": 0}, r"layers \(0\)"),
    ({"max_patches": 0}, r"max_patches \(0\)"),
])
def test_bad_parameters(overrides, match):
    with pytest.raises(ValueError, match=match):
        _model(**overrides)


def test_bad_inputs():
    model = _model(max_patches=3)
    with pytest.raises(ValueError, match="more than max_patches"):
        model(_series(1, 13, 3))
    with pytest.raises(ValueError, match=r"x must be \[B, T, 3\]"):
        model(_series(1, 8, 2))
    with pytest.raises(ValueError, match="mask must be"):
        model(_series(1, 8, 3), torch.ones(1, 7, dtype=torch.bool))


def test_registry_entry_and_bundle_round_trip():
    entry = get_entry("patch_transformer", modality="series", outputs=("per_step",))
    assert entry.embedding_dim({"in_channels": 1}) == 128
    assert entry.embedding_dim({"output_dim": 12}) == 12
    config = {"in_channels": 3, **SMALL}
    model = build_model("patch_transformer", config, seed=0).eval()
    restored = from_bundle(to_bundle(model, "patch_transformer", config), modality="series")
    x = _series(2, 9, 3)
    assert torch.equal(restored(x), model(x))


def test_hierarchical_loss_trains_through_it():
    """TS2Vec's hierarchical loss takes the per-step output unchanged and a few steps lower it."""
    from contrastive_signals.losses.hierarchical_contrastive import hierarchical_contrastive_loss

    model = _model(in_channels=2, dropout=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = _series(6, 24, 2)
    noise = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(8):
        view_a = x + 0.05 * torch.randn(x.shape, generator=noise)
        view_b = x + 0.05 * torch.randn(x.shape, generator=noise)
        loss = hierarchical_contrastive_loss(model(view_a), model(view_b))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
