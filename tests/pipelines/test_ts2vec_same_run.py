"""Our TS2Vec recipe makes the same random draws as the authors' code (the `ts2vec`
distribution on PyPI, the paper's repository packaged): same seed, same weights after training.

Each reference run calls the authors' ``init_dl_program(seed)`` (python, numpy and torch seeded
globally with seed, seed + 1, seed + 2) and restores the global state afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastive_signals.losses.hierarchical_contrastive import contextual_crop_views
from contrastive_signals.methods._ts2vec_draws import Ts2VecDraws, ts2vec_torch_seed
from contrastive_signals.methods.series import SeriesPretrainParams, pretrain_series
from contrastive_signals.models.registry import build_model_with_rng_state
from contrastive_signals.models.ts_encoders import dropout_from, encode_instances

ENCODER = {"output_dim": 16, "hidden_dim": 8, "depth": 3}
SEED = 42


@contextmanager
def global_state_restored() -> Iterator[None]:
    """Undo what the authors' ``init_dl_program`` sets globally: the python, numpy and torch
    generators and the cuDNN / TF32 flags."""
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    flags = (torch.backends.cudnn.enabled, torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
        (torch.backends.cudnn.enabled, torch.backends.cudnn.deterministic,
         torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = flags


def reference_run(x: np.ndarray, iterations: int, seed: int = SEED) -> torch.nn.Module:
    """The authors' TS2Vec trained on ``x`` ``[N, T, C]`` (NaN = missing) after their own
    ``init_dl_program(seed)``: their averaged encoder."""
    ts2vec = pytest.importorskip("ts2vec")
    from ts2vec.utils import init_dl_program

    with global_state_restored():
        init_dl_program("cpu", seed=seed)
        model = ts2vec.TS2Vec(input_dims=x.shape[2], output_dims=ENCODER["output_dim"],
                              hidden_dims=ENCODER["hidden_dim"], depth=ENCODER["depth"],
                              device="cpu", batch_size=8, lr=1e-3)
        model.fit(x.copy(), n_iters=iterations)
    return model.net.module


def our_run(x: np.ndarray, iterations: int, seed: int = SEED) -> torch.nn.Module:
    mask = torch.from_numpy(~np.isnan(x).all(-1))
    method = SeriesPretrainParams(method="ts2vec", encoder=ENCODER, iterations=iterations,
                                  seed=seed)
    encoder, _ = pretrain_series(torch.from_numpy(np.nan_to_num(x)), mask, method, name="ours")
    return encoder


def series(varying_length: bool) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((20, 60, 2)).astype(np.float32)
    if varying_length:  # NaN tails: TS2Vec centres these series before training
        for i in range(0, 20, 3):
            x[i, 50 - i:] = np.nan
    return x


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pairs = list(zip(a.parameters(), b.parameters(), strict=True))
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in pairs)


@pytest.mark.parametrize("varying_length", [False, True])
def test_same_seed_same_weights_as_the_authors_code(one_torch_thread, varying_length):
    # 20 series in batches of 8: 2 batches per epoch, so 7 steps cross 3 epoch boundaries.
    x = series(varying_length)
    theirs = reference_run(x, iterations=7)
    ours = our_run(x, iterations=7)
    # Same draws and the same operations: identical here; a small tolerance for summation
    # order on other CPUs. A different draw anywhere moves weights by ~1e-3 (lr) or more.
    assert max_weight_difference(ours, theirs) < 1e-6
    assert max_weight_difference(our_run(x, iterations=7, seed=SEED + 1), theirs) > 1e-3


def test_training_moves_the_weights(one_torch_thread):
    x = series(False)
    initial, _ = build_model_with_rng_state("dilated_conv", {"in_channels": 2, **ENCODER},
                                            seed=ts2vec_torch_seed(SEED))
    assert max_weight_difference(our_run(x, iterations=3), initial) > 1e-4


def test_weights_and_rng_state_match_a_globally_seeded_construction():
    config = {"in_channels": 2, **ENCODER}
    encoder, state = build_model_with_rng_state("dilated_conv", config, seed=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        reference, _ = build_model_with_rng_state("dilated_conv", config, seed=3)
        torch.testing.assert_close(encoder.state_dict(), reference.state_dict(), rtol=0, atol=0)
        torch.manual_seed(3)
        type(encoder)(2, **ENCODER)  # the draws of construction, from the global generator
        assert torch.equal(state, torch.get_rng_state())


def test_dropout_from_a_generator_equals_torch_dropout():
    x = torch.randn(4, 16, 30, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        expected = F.dropout(x, 0.1, training=True)
    got = dropout_from(x, 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(got, expected)
    assert torch.equal(dropout_from(x, 0.0, torch.Generator()), x)


def test_epoch_order_is_the_dataloader_shuffle():
    dataset = torch.utils.data.TensorDataset(torch.arange(13))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        loader = torch.utils.data.DataLoader(dataset, batch_size=13, shuffle=True)
        expected = [next(iter(loader))[0] for _ in range(2)]
    draws = Ts2VecDraws.after_weights(0, torch.Generator().manual_seed(9).get_state())
    assert draws.numpy.randint(1000) == np.random.RandomState(1).randint(1000)  # seed + 1
    for order in expected:
        assert torch.equal(draws.epoch_order(13), order)


def test_crops_from_a_random_state_are_the_authors_draws():
    x = torch.randn(5, 40, 1, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(5, 40, dtype=torch.bool)
    x1, m1, x2, m2, overlap = contextual_crop_views(x, mask, generator=np.random.RandomState(4))
    rs = np.random.RandomState(4)  # the authors' calls, in their order
    crop_l = rs.randint(low=2, high=41)
    left = rs.randint(40 - crop_l + 1)
    e_left = rs.randint(left + 1)
    e_right = rs.randint(low=left + crop_l, high=41)
    offset = rs.randint(low=-e_left, high=40 - e_right + 1, size=5)
    assert overlap == crop_l
    assert x1.shape[1] == left + crop_l - e_left and x2.shape[1] == e_right - left
    for i in range(5):
        assert torch.equal(x1[i], x[i, offset[i] + e_left:offset[i] + left + crop_l])
        assert torch.equal(x2[i], x[i, offset[i] + left:offset[i] + e_right])
    assert m1.all() and m2.all()


def test_padded_window_pooling_is_the_authors_full_series_encoding(one_torch_thread):
    x = series(varying_length=True)
    theirs = reference_run(x, iterations=2)
    ts2vec = pytest.importorskip("ts2vec")
    with global_state_restored():  # the wrapper draws weights, replaced just below
        wrapper = ts2vec.TS2Vec(input_dims=2, output_dims=ENCODER["output_dim"],
                                hidden_dims=ENCODER["hidden_dim"], depth=ENCODER["depth"],
                                device="cpu", batch_size=8)
    wrapper.net.module.load_state_dict(theirs.state_dict())
    expected = torch.from_numpy(wrapper.encode(x.copy(), encoding_window="full_series"))
    ours = our_run(x, iterations=2)
    mask = torch.from_numpy(~np.isnan(x).all(-1))
    window = encode_instances(ours, torch.from_numpy(np.nan_to_num(x)), mask, pool_padding=True)
    observed = encode_instances(ours, torch.from_numpy(np.nan_to_num(x)), mask)
    torch.testing.assert_close(window, expected, rtol=1e-5, atol=1e-6)
    shorter = ~mask.all(1)  # the series with NaN tails
    assert not torch.allclose(observed[shorter], expected[shorter])
    torch.testing.assert_close(observed[~shorter], expected[~shorter], rtol=1e-5, atol=1e-6)


def test_unknown_pooling_is_rejected_by_name():
    from contrastive_signals.pipelines.timeseries.params import EvaluationParams

    with pytest.raises(ValueError, match="pooling"):
        EvaluationParams(pooling="mean")
