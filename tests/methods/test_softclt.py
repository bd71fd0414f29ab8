"""The `softclt` method: registered beside TS2Vec, TS2Vec's very run when its assignments are
hard, soft assignments from the training set's distance range."""

import math

import pytest
import torch

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.methods.select import METHODS, MethodParams, requirements
from contrastive_signals.methods.series import SeriesPretrainParams, pretrain_series
from contrastive_signals.methods.softclt import (
    SoftCltMethod,
    SoftCltParams,
    series_distances,
    training_distance_range,
)
from contrastive_signals.methods.ts2vec import REQUIRES
from contrastive_signals.models.registry import get_entry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"output_dim": 8, "hidden_dim": 4, "depth": 1}
X = torch.randn(8, 12, 2, generator=torch.Generator().manual_seed(0))
MASK = torch.ones(8, 12, dtype=torch.bool)


def _pretrain(method, **block):
    params = from_params(SeriesPretrainParams, {
        "method": method, "encoder": TINY, "iterations": 4, "batch_size": 4,
        **({method: block} if block else {})}, path="m")
    encoder, result = pretrain_series(X, MASK, params, name=method)
    return encoder.state_dict(), result.history["train_loss"]


def test_registered_beside_ts2vec():
    assert "softclt" in METHODS and requirements("softclt") == REQUIRES
    params = MethodParams(method="softclt", softclt=SoftCltParams(tau_instance=3.0))
    method = params.build(get_entry("dilated_conv"), seed=0)
    assert isinstance(method, SoftCltMethod) and method.params.tau_instance == 3.0


def test_hard_assignments_train_ts2vecs_network():
    ts2vec, ts2vec_loss = _pretrain("ts2vec")
    hard, hard_loss = _pretrain("softclt", tau_instance=None, tau_temporal=None)
    assert ts2vec.keys() == hard.keys()
    for key in ts2vec:
        torch.testing.assert_close(hard[key], ts2vec[key])
    assert hard_loss == pytest.approx(ts2vec_loss)


def test_soft_assignments_train_another_network_reproducibly():
    ts2vec, _ = _pretrain("ts2vec")
    soft, loss = _pretrain("softclt", tau_instance=5.0, tau_temporal=1.0)
    again, loss_again = _pretrain("softclt", tau_instance=5.0, tau_temporal=1.0)
    assert all(math.isfinite(v) for v in loss) and loss == loss_again
    assert all(torch.equal(soft[k], again[k]) for k in soft)
    assert not torch.equal(soft["input_fc.weight"], ts2vec["input_fc.weight"])


def test_instance_weights_use_the_training_sets_range():
    method = SoftCltMethod(SoftCltParams(tau_instance=2.0, max_weight=0.5), seed=0)
    method.build_encoder("dilated_conv", {"in_channels": 2, **TINY})
    method.batches(X, MASK, batch_size=4)
    low, high = training_distance_range(X)
    weights = method.instance_weights(X[:3], MASK[:3])
    d = torch.cdist(X[:3].flatten(1), X[:3].flatten(1))
    expected = 2 * 0.5 * torch.sigmoid(-2.0 * (d - low) / (high - low))
    torch.testing.assert_close(weights, expected.fill_diagonal_(1.0))
    # padding reads as 0, whatever the array holds there
    mask = MASK[:3].clone()
    mask[0, -4:] = False
    noisy = X[:3].clone()
    noisy[0, -4:] = 100.0
    cleaned = X[:3].clone()
    cleaned[0, -4:] = 0.0
    torch.testing.assert_close(method.instance_weights(noisy, mask),
                               method.instance_weights(cleaned, mask))


def test_soft_loss_adds_to_ts2vecs_on_the_same_batch():
    # Same seed: same weights, batch, crops and masks. The soft terms add the weighted
    # negative log-probabilities of the other candidates, all >= 0.
    def first_loss(params):
        method = SoftCltMethod(params, seed=0)
        encoder = method.build_encoder("dilated_conv", {"in_channels": 2, **TINY})
        batch = next(iter(method.batches(X, MASK, batch_size=4)(0, torch.Generator())))
        return float(method.loss(encoder, batch, torch.Generator()).detach())

    hard = first_loss(SoftCltParams(tau_instance=None, tau_temporal=None))
    soft = first_loss(SoftCltParams())
    assert math.isfinite(soft) and soft > hard


@pytest.mark.parametrize(("block", "match"), [
    ({"tau_instance": -1.0}, "tau_instance"),
    ({"tau_temporal": -0.1}, "tau_temporal"),
    ({"max_weight": 1.5}, "max_weight"),
    ({"alpha": 2.0}, "alpha"),
    ({"distance": "dtw_fast"}, "distance"),
])
def test_bad_parameters_name_the_path(block, match):
    with pytest.raises(ParameterError, match=match) as error:
        from_params(SeriesPretrainParams, {"method": "softclt", "softclt": block},
                    path="timeseries.ucr.methods.soft")
    assert "timeseries.ucr.methods.soft" in str(error.value)


def test_spectrum_distance_ignores_circular_shifts():
    shifted = torch.roll(X[:1], shifts=5, dims=1)
    series = torch.cat([X[:2], shifted])
    spectrum = series_distances(series, "spectrum")
    assert float(spectrum[0, 2]) == pytest.approx(0.0, abs=1e-9)
    assert float(series_distances(series)[0, 2]) > 1.0
    assert float(spectrum[0, 1]) > 0
    with pytest.raises(ValueError, match="distance must be one of"):
        series_distances(series, "manhattan")


def test_dtw_distance_is_aeons_and_tolerates_warping():
    from aeon.distances import dtw_distance

    t = torch.linspace(0, 1, 60, dtype=torch.float64)
    bump = torch.exp(-((t - 0.4) / 0.05) ** 2)
    late = torch.exp(-((t - 0.5) / 0.05) ** 2)   # the same bump, 6 steps later
    other = torch.sin(2 * math.pi * 3 * t)
    series = torch.stack([bump, late, other]).unsqueeze(-1)  # [3, 60, 1]
    dtw = series_distances(series, "dtw")
    euclidean = series_distances(series)
    assert dtw.shape == (3, 3) and float(dtw.diagonal().abs().max()) == 0.0
    assert torch.allclose(dtw, dtw.T)
    # sqrt of aeon's DTW (a sum of squared differences on the warping path)
    reference = dtw_distance(bump.numpy()[None], other.numpy()[None])
    assert float(dtw[0, 2]) == pytest.approx(math.sqrt(reference), rel=1e-9)
    # a shifted bump is near under DTW, far under Euclidean; DTW never exceeds Euclidean
    assert float(dtw[0, 1]) < 0.2 * float(euclidean[0, 1])
    assert bool((dtw <= euclidean + 1e-9).all())
    # multivariate: channels are warped together
    two = torch.cat([series, series.flip(0)], dim=-1)
    assert series_distances(two, "dtw").shape == (3, 3)


def test_decorrelation_is_added_to_softclts_loss_too():
    """The same penalty as on TS2Vec's loss: the soft loss with it differs from the soft loss
    without it, and a weight of 0 trains SoftCLT's network unchanged."""
    soft = {"tau_instance": 5.0, "tau_temporal": None}
    plain, plain_loss = _pretrain("softclt", **soft)
    zero, zero_loss = _pretrain("softclt", **soft, decorrelation=0.0)
    assert zero_loss == pytest.approx(plain_loss)
    assert all(torch.equal(zero[k], plain[k]) for k in plain)
    _, weighted_loss = _pretrain("softclt", **soft, decorrelation=3.0)
    assert weighted_loss[0] > plain_loss[0]  # the first step's penalty is > 0


def test_a_negative_decorrelation_weight_names_the_parameter():
    with pytest.raises(ParameterError, match=r"m\.softclt.*decorrelation"):
        _pretrain("softclt", decorrelation=-1.0)
