"""Pretraining any method on series with the iteration budget, the weight average, and the
supervised series classifier."""

import pytest
import torch

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.methods._ts2vec_draws import ts2vec_torch_seed
from contrastive_signals.methods.series import (
    SeriesClassifierParams,
    SeriesPretrainParams,
    pretrain_series,
    pretrain_series_bundle,
    scaled_budget,
    train_series_classifier,
)
from contrastive_signals.methods.supervised import ClassifierParams
from contrastive_signals.models.registry import build_model, from_bundle
from contrastive_signals.training.fit import FitConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"output_dim": 8, "hidden_dim": 4, "depth": 1}
X = torch.randn(8, 12, 1, generator=torch.Generator().manual_seed(0))
MASK = torch.ones(8, 12, dtype=torch.bool)
LABELS = torch.arange(8) % 2


def test_same_seed_same_encoder_whatever_the_global_state():
    params = SeriesPretrainParams(encoder={**TINY, "dropout": 0.5}, iterations=2, batch_size=4)
    torch.manual_seed(1)
    first, _ = pretrain_series(X, MASK, params, name="a")
    torch.manual_seed(2)
    second, _ = pretrain_series(X, MASK, params, name="b")
    assert all(torch.equal(p, q) for p, q in zip(first.state_dict().values(),
                                                second.state_dict().values(), strict=True))


def test_swa_average_starts_from_the_initial_weights():
    # TS2Vec's AveragedModel takes the initial weights as its first snapshot, so after one step
    # the average is the mean of the initial and the trained weights.
    params = SeriesPretrainParams(encoder=TINY, iterations=1, batch_size=4, learning_rate=0.1)
    averaged, _ = pretrain_series(X, MASK, params, name="swa")
    trained, _ = pretrain_series(X, MASK, SeriesPretrainParams(**{**params.__dict__, "swa": False}),
                                 name="plain")
    initial = build_model("dilated_conv", {"in_channels": 1, **TINY},
                          seed=ts2vec_torch_seed(params.seed))
    for key, value in averaged.state_dict().items():
        expected = (initial.state_dict()[key] + trained.state_dict()[key]) / 2
        torch.testing.assert_close(value, expected)
    assert not torch.equal(trained.state_dict()["input_fc.weight"],
                           initial.state_dict()["input_fc.weight"])


@pytest.mark.parametrize(("method", "iterations", "epochs"), [
    ("ts2vec", 5, 3), ("simclr", 5, 3), ("supcon", 2, 1), ("triplet", 5, 5)])
def test_exactly_the_iteration_budget(method, iterations, epochs):
    # 8 series in batches of 4: 2 steps an epoch; triplet: one P x K batch (2 x 3) an epoch
    params = from_params(SeriesPretrainParams, {
        "method": method, "architecture": "cnn1d", "iterations": iterations, "batch_size": 4,
        "encoder": {"output_dim": 4, "hidden_dim": 4, "layers": 1}, "swa": False,
        "triplet": {"classes_per_batch": 2, "samples_per_class": 3}}, path=method)
    _, result = pretrain_series(X, None, params, labels=LABELS, name=method)
    assert len(result.history["train_loss"]) == epochs


def test_the_iteration_scale_trains_that_fraction_of_the_budget():
    # half of 10 steps is 5: the same encoder as a budget of 5, step for step
    scaled, result = pretrain_series(X, MASK, SeriesPretrainParams(
        encoder=TINY, iterations=10, iteration_scale=0.5, batch_size=4), name="half")
    direct, _ = pretrain_series(X, MASK, SeriesPretrainParams(
        encoder=TINY, iterations=5, batch_size=4), name="five")
    full, _ = pretrain_series(X, MASK, SeriesPretrainParams(
        encoder=TINY, iterations=10, batch_size=4), name="ten")
    assert len(result.history["train_loss"]) == 3  # 2 + 2 + 1 steps
    assert all(torch.equal(p, q) for p, q in zip(scaled.state_dict().values(),
                                                direct.state_dict().values(), strict=True))
    assert not torch.equal(scaled.state_dict()["input_fc.weight"],
                           full.state_dict()["input_fc.weight"])


@pytest.mark.parametrize(("iterations", "scale", "expected"), [
    (200, 1.0, 200), (200, 0.85, 170), (600, 0.85, 510), (200, 0.851, 171), (3, 0.01, 1)])
def test_scaled_budget_rounds_up(iterations, scale, expected):
    assert scaled_budget(iterations, scale) == expected


def test_labels_are_required_where_the_method_reads_them():
    with pytest.raises(ValueError, match="needs the labels"):
        pretrain_series(X, MASK, SeriesPretrainParams(method="supcon", encoder=TINY,
                                                      iterations=1), name="x")


def test_a_bundle_rebuilds_the_encoder():
    params = SeriesPretrainParams(encoder=TINY, iterations=1, batch_size=4, swa=False)
    bundle, history, seconds = pretrain_series_bundle(X, MASK, params, name="b")
    encoder, _ = pretrain_series(X, MASK, params, name="b")
    assert seconds > 0 and len(history["train_loss"]) == 1
    assert torch.equal(from_bundle(bundle)(X, MASK), encoder(X, MASK))


def test_bad_parameters_name_their_path():
    with pytest.raises(ParameterError, match=r"m: iterations must be >= 1"):
        from_params(SeriesPretrainParams, {"iterations": 0}, path="m")
    for scale in (0, -0.5, 1.5):
        with pytest.raises(ParameterError, match=r"m: iteration_scale must lie in \(0, 1\]"):
            from_params(SeriesPretrainParams, {"iteration_scale": scale}, path="m")
    with pytest.raises(ParameterError, match=r"m.iteration_scale must be a finite number"):
        from_params(SeriesPretrainParams, {"iteration_scale": float("nan")}, path="m")
    with pytest.raises(ParameterError, match=r"m: encoder.in_channels comes from the data"):
        from_params(SeriesPretrainParams, {"encoder": {"in_channels": 3}}, path="m")
    with pytest.raises(ParameterError, match=r"m.augmentation: shift_p must lie in \[0, 1\]"):
        from_params(SeriesPretrainParams, {"augmentation": {"shift_p": 2}}, path="m")
    with pytest.raises(ParameterError, match="'curve_cnn' reads signal data"):
        from_params(SeriesClassifierParams, {"architecture": "curve_cnn",
                                             "fit": {"epochs": 1, "learning_rate": 1.0}}, path="s")


def test_the_series_classifier_learns_the_labels():
    x = torch.cat([torch.zeros(8, 6, 1), torch.ones(8, 6, 1)]) + 0.1 * torch.randn(16, 6, 1)
    y = torch.tensor([0] * 8 + [1] * 8)
    params = SeriesClassifierParams(
        architecture="cnn1d", encoder={"output_dim": 4, "hidden_dim": 4, "layers": 1},
        classifier=ClassifierParams(batch_size=8),
        fit=FitConfig(epochs=30, learning_rate=0.05, device="cpu", progress=False))
    model = train_series_classifier(x, None, y, params, name="clf")
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() >= 0.9
