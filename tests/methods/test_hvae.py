"""The ``hvae_split`` method: its batch loss (ELBO, triplets, swap terms) against the formula,
one training step, a loss that falls, the KL warm-up stepped by fit, and its parameters."""

import pytest
import torch

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.losses.elbo import (
    derangement,
    group_derangement,
    negative_elbo,
    signal_noise_triplet_losses,
    swap_consistency_loss,
)
from contrastive_signals.methods.base import check_compatible
from contrastive_signals.methods.hvae import (
    HVAELossParams,
    HVAESplit,
    hvae_batch_loss,
    random_share,
)
from contrastive_signals.models.hvae import HierarchicalVAE, cross_swap_codes
from contrastive_signals.models.registry import build_model
from contrastive_signals.training.autocast import CpuBf16Forward
from tests.methods.pairs import SIZE, fit_method, fit_on_one_batch, tiny_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = {"image_size": SIZE, "channels": (4, 8, 8), "spatial_signal": 2, "spatial_noise": 1,
          "global_signal": 4, "global_noise": 2, "latent_stride": 2}


def _hvae(seed: int = 0) -> HierarchicalVAE:
    return build_model("hvae", CONFIG, seed=seed)


def _loss_setup(**weights: float):
    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=16, channels=(4, 8, 8), spatial_signal=3, spatial_noise=2,
                            global_signal=5, global_noise=4, latent_stride=2)
    g = torch.Generator().manual_seed(1)
    clean, noisy = torch.rand(4, 1, 16, 16, generator=g), torch.rand(4, 1, 16, 16, generator=g)
    views = torch.tensor([0, 1, 0, 1])
    loss = HVAELossParams(likelihood_std=0.1, beta=0.5, signal_weight=3.0, noise_weight=2.0,
                          signal_margin=1.0, noise_margin=0.5, **weights)
    return model, clean, noisy, views, loss


def _batch_loss(seed: int = 5, **weights: float):
    model, clean, noisy, views, loss = _loss_setup(**weights)
    value = hvae_batch_loss(model, clean, noisy, views, torch.Generator().manual_seed(seed),
                            loss=loss, beta=0.25, forward=CpuBf16Forward(enabled=False))
    return model, value


def test_hvae_loss_without_swap_weights_is_the_elbo_plus_triplets():
    """swap weights of 0 give exactly the loss of before the swap terms: negative ELBO +
    triplets at both levels, with the same draws from the generator."""
    model, clean, noisy, _, _ = _loss_setup()
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


def _swap_terms_by_hand(model, clean, noisy, views, fraction: float = 1.0):
    """The removal and injection terms with the loss's own draws from the generator, each on
    ``random_share(..., fraction)`` of its pairs."""
    g = torch.Generator().manual_seed(5)
    out = model(torch.cat([clean, noisy]), g)
    derangement(4, g)                                   # the triplet negatives
    codes = {level: q.mean for level, q in out.posteriors.items()}
    rows, donors = random_share(torch.arange(4), derangement(4, g), fraction, g)
    removed = model.decode(cross_swap_codes(model, codes, 4 + rows, donors))
    removal = swap_consistency_loss(removed, clean[rows], std=0.1)
    rows, noisy_donors = random_share(*group_derangement(views, g), fraction, g)
    injected = model.decode(cross_swap_codes(model, codes, rows, 4 + noisy_donors))
    return removal, swap_consistency_loss(injected, noisy[rows], std=0.1)


def test_swap_terms_are_weighted_and_decode_the_swapped_means():
    model, clean, noisy, views, _ = _loss_setup()
    _, off = _batch_loss()
    _, on = _batch_loss(swap_weight=1.0)
    _, twice = _batch_loss(swap_weight=2.0)
    _, both = _batch_loss(swap_weight=1.0, inject_weight=0.5)
    removal, injection = (t.detach() for t in _swap_terms_by_hand(model, clean, noisy, views))
    assert removal > 0 and injection > 0
    torch.testing.assert_close(on - off, removal, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(twice - off, 2 * removal, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(both - off, removal + 0.5 * injection, rtol=1e-4, atol=1e-6)


def test_swap_fraction_decodes_a_random_share_of_each_terms_pairs():
    model, clean, noisy, views, _ = _loss_setup()
    _, off = _batch_loss()
    _, half = _batch_loss(swap_weight=1.0, inject_weight=0.5, swap_fraction=0.5)
    _, whole = _batch_loss(swap_weight=1.0, inject_weight=0.5)
    removal, injection = (t.detach() for t in _swap_terms_by_hand(model, clean, noisy, views,
                                                                   fraction=0.5))
    torch.testing.assert_close(half - off, removal + 0.5 * injection, rtol=1e-4, atol=1e-6)
    assert not torch.isclose(half, whole)  # other pairs, another estimate of the same terms


def test_random_share_keeps_a_random_subset_of_the_pairs_in_order():
    rows, donors = torch.arange(10), torch.arange(10).roll(1)
    picks = set()
    for seed in range(5):
        kept_rows, kept_donors = random_share(rows, donors, 0.3, torch.Generator().manual_seed(seed))
        assert len(kept_rows) == 3 and torch.equal(kept_donors, donors[kept_rows])
        assert torch.equal(kept_rows, kept_rows.sort().values)
        picks.add(tuple(kept_rows.tolist()))
    assert len(picks) > 1  # the generator draws the subset
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    kept_rows, kept_donors = random_share(rows, donors, 1.0, g)
    assert kept_rows is rows and kept_donors is donors
    assert torch.equal(g.get_state(), state)  # all pairs: no draw, the training of before
    assert len(random_share(rows[:2], donors[:2], 0.1, g)[0]) == 1  # never none
    empty = torch.empty(0, dtype=torch.long)
    assert random_share(empty, empty, 0.5, g)[0].numel() == 0


def test_swap_term_gradient_reaches_the_decoder_through_the_swapped_code():
    model, clean, noisy, views, _ = _loss_setup()
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


def test_method_loss_is_the_batch_loss_at_the_warmed_up_beta():
    model, clean, noisy, views, params = _loss_setup(swap_weight=1.0, inject_weight=1.0)
    method = HVAESplit(params)
    method.warmup_steps, method.step = 4, 1
    value = method.loss(model, (clean, noisy, views), torch.Generator().manual_seed(5))
    expected = hvae_batch_loss(model, clean, noisy, views, torch.Generator().manual_seed(5),
                               loss=params, beta=0.5 * 0.25, forward=CpuBf16Forward())
    torch.testing.assert_close(value, expected)


def test_one_step_on_a_tiny_batch():
    method = HVAESplit(HVAELossParams(swap_weight=1.0, inject_weight=1.0))
    model = method.build(_hvae())
    train = tiny_pairs(count=4)
    clean, noisy, views = next(iter(method.batches(train, batch_size=4, epochs=1)(
        0, torch.Generator().manual_seed(0))))
    assert clean.shape == noisy.shape == (4, 1, SIZE, SIZE) and views.shape == (4,)
    loss = method.loss(model, (clean, noisy, views), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.decoder_out[-1].weight.grad.abs().sum() > 0
    assert method.export(model) is model  # no head: the whole model is bundled


def test_loss_decreases_over_a_few_steps():
    method = HVAESplit(HVAELossParams(likelihood_std=0.1, kl_warmup_fraction=0.0,
                                      swap_weight=1.0, inject_weight=1.0))
    result = fit_on_one_batch(method, _hvae(), tiny_pairs(count=8), steps=8)
    losses = result.history["train_loss"]
    assert losses[-1] < 0.75 * losses[0], losses


class _RecordingBeta(HVAESplit):
    def loss(self, model, batch, generator):
        self.seen = [*getattr(self, "seen", []), self.beta]
        return super().loss(model, batch, generator)


def test_beta_warms_up_with_the_steps_fit_takes():
    """8 images in batches of 4 for 2 epochs: 4 steps, warm-up over half of them."""
    method = _RecordingBeta(HVAELossParams(beta=0.5, kl_warmup_fraction=0.5))
    fit_method(method, _hvae(), tiny_pairs(count=8), epochs=2, learning_rate=1e-3)
    assert method.warmup_steps == 2
    assert method.seen == [0.0, 0.25, 0.5, 0.5]
    assert method.state_dict() == {"step": 4, "warmup_steps": 2}
    resumed = HVAESplit(HVAELossParams(beta=0.5, kl_warmup_fraction=0.5))
    resumed.load_state_dict({"step": 1, "warmup_steps": 2})
    assert resumed.beta == 0.25
    resumed.on_step_end(None, 1)
    assert resumed.step == 2 and resumed.beta == 0.5


def test_cpu_bf16_policy_makes_the_model_channels_last():
    method = HVAESplit(HVAELossParams(), forward=CpuBf16Forward(enabled=True, device="cpu"))
    model = method.build(_hvae())
    assert model.encoder_stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    train = tiny_pairs(count=4)
    batch = next(iter(method.batches(train, batch_size=4, epochs=1)(
        0, torch.Generator().manual_seed(0))))
    assert torch.isfinite(method.loss(model, batch, torch.Generator().manual_seed(0)))


def test_hvae_split_needs_a_split_latent_image_model():
    assert check_compatible("hvae_split", HVAESplit.requires, "hvae").name == "hvae"
    with pytest.raises(ValueError, match=r"method 'hvae_split' needs an encoder of image data "
                                         r"with output split_latent; 'residual_unet'"):
        check_compatible("hvae_split", HVAESplit.requires, "residual_unet")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("likelihood", "cauchy", r"hvae_split: likelihood must be one of \['gaussian', 'laplace'\]"),
    ("likelihood_std", 0.0, r"hvae_split: likelihood_std must be > 0"),
    ("kl_warmup_fraction", 1.5, r"hvae_split: kl_warmup_fraction must lie in \[0, 1\]"),
    ("beta", -1.0, r"hvae_split: beta must be >= 0"),
    ("swap_weight", float("nan"), r"hvae_split.swap_weight must be a finite number, got nan"),
    ("noise_margin", -0.1, r"hvae_split: noise_margin must be >= 0"),
    ("swap_fraction", 0.0, r"hvae_split: swap_fraction must lie in \(0, 1\], got 0.0"),
    ("swap_fraction", 1.5, r"hvae_split: swap_fraction must lie in \(0, 1\], got 1.5"),
    ("margin", 1.0, r"hvae_split: unknown parameter\(s\) \['margin'\]"),
])
def test_bad_loss_parameters_are_named(key, value, message):
    with pytest.raises(ParameterError, match=message):
        from_params(HVAELossParams, {key: value}, path="hvae_split")
