"""The weight average as method state stepped by fit's hooks."""

import pytest
import torch
from torch import nn

from contrastive_signals.methods.averaging import WeightAveraging, ema_update
from contrastive_signals.methods.base import StatelessHooks
from contrastive_signals.training.fit import FitConfig, fit


class _Regression(StatelessHooks):
    requires = None

    def build(self, encoder, *, seed=0):
        return encoder

    def loss(self, model, batch, generator):
        (x,) = batch
        return (model(x) - 1.0).pow(2).mean()

    @staticmethod
    def export(model):
        return model


def _fit_recording(method: WeightAveraging, *, epochs: int, steps: int
                   ) -> tuple[nn.Module, list[torch.Tensor]]:
    """Fit a Linear(2, 1) through ``method`` -> (model, its weight at the start and after
    every step)."""
    model = nn.Linear(2, 1)
    snapshots = [model.weight.detach().clone()]
    model = method.build(model)

    class Recorder:
        def on_step_end(self, m, step):
            method.on_step_end(m, step)
            snapshots.append(m.weight.detach().clone())

        def on_epoch_end(self, m, epoch):
            return method.on_epoch_end(m, epoch)

    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    fit(model, loss_fn=method.loss, batches=lambda epoch, g: [(x,)] * steps, hooks=Recorder(),
        config=FitConfig(epochs=epochs, learning_rate=0.1, cosine_schedule=False, device="cpu",
                         progress=False))
    return model, snapshots


def test_the_average_holds_the_start_and_every_step():
    method = WeightAveraging(_Regression())
    model, snapshots = _fit_recording(method, epochs=2, steps=3)
    averaged = method.export(model)
    assert len(snapshots) == 7 and not averaged.training
    torch.testing.assert_close(averaged.weight, torch.stack(snapshots).mean(0))
    assert averaged is not model


def test_it_must_be_built_first():
    with pytest.raises(RuntimeError, match="build"):
        WeightAveraging(_Regression()).on_step_end(nn.Linear(1, 1), 0)


def test_ema_update_follows_its_formula_with_warm_up():
    average, current = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.5])
    # early: the warm-up decay (1 + n) / (10 + n) is below the target decay
    torch.testing.assert_close(ema_update(average, current, 1, decay=0.99),
                               2 / 11 * average + 9 / 11 * current)
    # late: the target decay
    torch.testing.assert_close(ema_update(average, current, torch.tensor(1000), decay=0.9),
                               0.9 * average + 0.1 * current)


def test_ema_through_fit_is_the_recursive_average_of_the_steps():
    method = WeightAveraging(_Regression(), decay=0.5)
    model, snapshots = _fit_recording(method, epochs=1, steps=4)
    expected = snapshots[0]
    for n, weights in enumerate(snapshots[1:], start=1):
        d = min(0.5, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * weights
    torch.testing.assert_close(method.export(model).weight, expected)
    assert int(method.state_dict()["average"]["n_averaged"]) == 5


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1, 1.5])
def test_bad_decay_is_named(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAveraging(_Regression(), decay=decay)
