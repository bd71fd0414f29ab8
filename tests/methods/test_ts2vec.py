"""TS2Vec's method: its parameters, its encoder built on the authors' random stream, the
centring of unequal-length series, and its batches."""

import numpy as np
import pytest
import torch

from contrastive_signals.losses.decorrelation import decorrelation_penalty
from contrastive_signals.losses.hierarchical_contrastive import hierarchical_contrastive_loss
from contrastive_signals.methods._ts2vec_draws import ts2vec_torch_seed
from contrastive_signals.methods.ts2vec import (
    DECORRELATION_ROWS,
    Ts2VecMethod,
    Ts2VecParams,
    centre_padded_series,
)
from contrastive_signals.models.registry import build_model

CONFIG = {"in_channels": 1, "output_dim": 4, "hidden_dim": 4, "depth": 1}


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="alpha"):
        Ts2VecParams(alpha=1.5)
    with pytest.raises(ValueError, match="temporal_unit"):
        Ts2VecParams(temporal_unit=-1)
    for weight in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="decorrelation"):
            Ts2VecParams(decorrelation=weight)


def test_the_encoder_comes_from_the_authors_torch_seed_and_must_come_first():
    method = Ts2VecMethod(Ts2VecParams(), seed=5)
    with pytest.raises(RuntimeError, match="build_encoder"):
        method.build(build_model("dilated_conv", CONFIG, seed=0))
    encoder = method.build_encoder("dilated_conv", CONFIG)
    expected = build_model("dilated_conv", CONFIG, seed=ts2vec_torch_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(encoder.parameters(), expected.parameters(),
                                                strict=True))
    assert method.build(encoder) is encoder and method.export(encoder) is encoder


def test_batches_centre_unequal_series_and_drop_the_last_partial_batch():
    method = Ts2VecMethod(Ts2VecParams(), seed=0)
    method.build_encoder("dilated_conv", CONFIG)
    x = torch.arange(7 * 6, dtype=torch.float32).view(7, 6, 1) + 1
    mask = torch.ones(7, 6, dtype=torch.bool)
    mask[0, 4:] = False  # one shorter series: the whole set is centred
    batches = list(method.batches(x * mask.unsqueeze(-1), mask, batch_size=3)(0, None))
    assert [b[0].shape for b in batches] == [(3, 6, 1), (3, 6, 1)]
    shorter = [m for _, ms in batches for m in ms if not m.all()]
    assert all(m.tolist() == [False, True, True, True, True, False] for m in shorter)


def test_the_loss_is_finite_and_differentiable():
    method = Ts2VecMethod(Ts2VecParams(), seed=0)
    model = method.build(method.build_encoder("dilated_conv", CONFIG)).train()
    x = torch.randn(4, 12, 1, generator=torch.Generator().manual_seed(0))
    loss = method.loss(model, (x, torch.ones(4, 12, dtype=torch.bool)), torch.Generator())
    loss.backward()
    assert torch.isfinite(loss) and model.input_fc.weight.grad is not None


def _loss_and_views(params: Ts2VecParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of one batch and, from a twin method on the same streams, that batch's
    overlap views."""
    x = torch.randn(4, 12, 1, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(4, 12, dtype=torch.bool)
    losses, views = [], []
    for _ in range(2):
        method = Ts2VecMethod(params, seed=3)
        model = method.build(method.build_encoder("dilated_conv", CONFIG)).train()
        losses.append(method.loss(model, (x, mask), torch.Generator()))
        method = Ts2VecMethod(params, seed=3)
        model = method.build(method.build_encoder("dilated_conv", CONFIG)).train()
        views.append(method.overlap_views(model, x, mask))
    torch.testing.assert_close(losses[0], losses[1])  # the streams repeat
    return losses[0], *views[0]


def test_decorrelation_adds_its_weighted_penalty_and_zero_is_ts2vecs_loss():
    plain, z1, z2 = _loss_and_views(Ts2VecParams())
    torch.testing.assert_close(plain, hierarchical_contrastive_loss(z1, z2))
    weighted, w1, w2 = _loss_and_views(Ts2VecParams(decorrelation=2.5))
    torch.testing.assert_close(w1, z1)
    penalty = (decorrelation_penalty(z1, max_rows=DECORRELATION_ROWS)
               + decorrelation_penalty(z2, max_rows=DECORRELATION_ROWS)) / 2
    assert penalty > 0
    torch.testing.assert_close(weighted, plain + 2.5 * penalty)


def test_centred_padding_matches_ts2vec():
    ts2vec_utils = pytest.importorskip("ts2vec.utils")
    lengths = [3, 7, 1, 6, 7]
    mask = torch.arange(7).view(1, 7) < torch.tensor(lengths).view(-1, 1)
    x = torch.randn(5, 7, 2, generator=torch.Generator().manual_seed(0)) * mask.unsqueeze(-1)
    before = x.clone()
    centred, centred_mask = centre_padded_series(x, mask)
    theirs = x.numpy().astype(np.float64)
    theirs[~mask.numpy()] = np.nan
    theirs = ts2vec_utils.centerize_vary_length_series(theirs)
    assert np.array_equal(centred_mask.numpy(), ~np.isnan(theirs).all(-1))
    assert np.allclose(centred.numpy(), np.nan_to_num(theirs))
    assert centred_mask.sum(1).tolist() == lengths and torch.equal(x, before)
