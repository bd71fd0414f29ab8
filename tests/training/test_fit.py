import pytest
import torch
from torch import nn

from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.device import resolve_device
from contrastive_signals.training.fit import FitConfig, fit, learning_rate_factor
from tests.conftest import requires_cuda


def linear_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return x, x @ w


def train_linear(seed: int, epochs: int = 20, device: str = "cpu", **overrides):
    x, y = linear_problem()
    torch.manual_seed(123)  # the model's init is not what this test is about
    model = nn.Linear(4, 1)
    config = FitConfig(epochs=epochs, learning_rate=0.05, seed=seed, device=device,
                       progress=False, **overrides)

    def loss_fn(net, batch, generator):
        xb, yb = batch
        noise = 0.01 * torch.randn(xb.shape, generator=generator).to(xb.device)
        return nn.functional.mse_loss(net(xb + noise), yb)

    def validate(net):
        dev = next(net.parameters()).device
        return {"val_loss": nn.functional.mse_loss(net(x.to(dev)), y.to(dev)).item()}

    return fit(model, loss_fn=loss_fn, config=config, validate=validate,
               batches=lambda epoch, g: shuffled_minibatches(x, y, batch_size=32, generator=g))


def test_fit_learns_and_records_history():
    result = train_linear(seed=0)
    history = result.history
    assert len(history["train_loss"]) == 20 == len(history["val_loss"]) == len(history["lr"])
    assert history["train_loss"][-1] < 0.05 * history["train_loss"][0]
    assert not result.model.training


def test_same_seed_same_result_different_seed_differs():
    a, b, c = train_linear(seed=1), train_linear(seed=1), train_linear(seed=2)
    assert a.history["train_loss"] == b.history["train_loss"]
    assert a.history["train_loss"] != c.history["train_loss"]


def test_early_stopping_restores_best_weights():
    result = train_linear(seed=0, epochs=40, early_stopping_patience=2)
    val = result.history["val_loss"]
    assert len(val) <= 40
    assert val[result.best_epoch] == min(val)


def test_non_finite_loss_fails_with_name():
    model = nn.Linear(2, 1)
    config = FitConfig(epochs=1, learning_rate=0.1, progress=False, name="exploding")
    with pytest.raises(FloatingPointError, match="exploding"):
        fit(model, loss_fn=lambda net, batch, g: net(batch[0]).sum() * float("nan"), config=config,
            batches=lambda e, g: [(torch.ones(4, 2),)])


def test_learning_rate_schedule_warmup_then_cosine():
    factors = [learning_rate_factor(e, epochs=10, warmup_epochs=2, cosine=True) for e in range(10)]
    assert factors[0] < factors[1] < factors[2] == 1.0
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))


def test_cuda_requested_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.gpu
@requires_cuda
def test_training_step_on_cuda_with_bf16_autocast():
    result = train_linear(seed=0, epochs=3, device="cuda")
    assert next(result.model.parameters()).device.type == "cuda"
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]


def test_minibatches_cover_every_item_once():
    x = torch.arange(10)
    batches = list(shuffled_minibatches(x, batch_size=3, generator=torch.Generator().manual_seed(0),
                                        drop_last=False))
    assert sorted(torch.cat([b[0] for b in batches]).tolist()) == list(range(10))


def test_seeded_global_rng_is_reproducible_and_leaves_the_callers_state():
    from contrastive_signals.training.device import seeded_global_rng

    torch.manual_seed(123)
    state = torch.get_rng_state()
    with seeded_global_rng(5):
        first = torch.rand(3)
    with seeded_global_rng(5):
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.get_rng_state(), state)


def test_parameter_groups_keep_their_settings_and_scale_the_scheduled_rate():
    """Groups given as ``parameters`` keep per-group settings (betas) and a group's
    ``lr_scale`` multiplies the scheduled learning rate: Adam's first step moves every weight
    by about the rate, so the scaled group moves ``lr_scale`` times as far."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(8, 3)
    fit(model, loss_fn=lambda m, b, g: m(b[0]).pow(2).mean(), batches=lambda e, g: [(x,)],
        parameters=[{"params": model[0].parameters(), "betas": (0.5, 0.999)},
                    {"params": model[1].parameters(), "lr_scale": 3.0}],
        config=FitConfig(epochs=1, learning_rate=1e-3, cosine_schedule=False, progress=False))
    moved = [(p.detach() - b).abs() for p, b in zip(model.parameters(), before, strict=True)]
    first, second = torch.cat([m.flatten() for m in moved[:2]]), torch.cat(
        [m.flatten() for m in moved[2:]])
    assert torch.allclose(first, torch.full_like(first, 1e-3), rtol=1e-2)
    assert torch.allclose(second, torch.full_like(second, 3e-3), rtol=1e-2)
