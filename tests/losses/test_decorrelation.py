"""The feature-decorrelation penalty: numpy's correlation matrix, its invariances, its range,
and clear errors."""

import numpy as np
import pytest
import torch

from contrastive_signals.losses.decorrelation import decorrelation_penalty, feature_correlation


def _features(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_the_correlation_is_numpys_over_all_leading_dimensions():
    z = _features(3, 7, 5)
    expected = np.corrcoef(z.reshape(21, 5).numpy(), rowvar=False)
    np.testing.assert_allclose(feature_correlation(z).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_rows_with_a_non_finite_value_are_left_out():
    z = _features(10, 4)
    holed = z.clone()
    holed[2, 1], holed[7, 3] = float("nan"), float("inf")
    kept = z[[i for i in range(10) if i not in (2, 7)]]
    torch.testing.assert_close(feature_correlation(holed), feature_correlation(kept))


@pytest.mark.parametrize("rows, features", [(50, 6), (5, 12)])  # [D, D] and Gram [N, N] paths
def test_the_penalty_is_the_mean_squared_off_diagonal_correlation(rows, features):
    z = _features(rows, features)
    corr = np.corrcoef(z.numpy(), rowvar=False)
    expected = (corr[~np.eye(features, dtype=bool)] ** 2).mean()
    assert decorrelation_penalty(z).item() == pytest.approx(expected, rel=1e-10)


def test_the_penalty_ignores_each_features_scale_and_offset():
    z = _features(40, 5)
    scaled = z * torch.tensor([1e-2, 2.0, -5.0, 30.0, 0.5], dtype=z.dtype) + torch.arange(5)
    assert decorrelation_penalty(scaled).item() == pytest.approx(decorrelation_penalty(z).item())


def test_the_penalty_runs_from_0_for_uncorrelated_to_1_for_one_repeated_feature():
    # orthogonal, centred columns: exactly uncorrelated
    q, _ = torch.linalg.qr(_features(16, 4) - _features(16, 4).mean(0))
    centred = q - q.mean(0)
    q, _ = torch.linalg.qr(centred)
    assert decorrelation_penalty(q - q.mean(0)).item() == pytest.approx(0.0, abs=1e-12)
    one = _features(30, 1)
    repeated = torch.cat([one, -2 * one, 3 * one + 1], dim=1)
    assert decorrelation_penalty(repeated).item() == pytest.approx(1.0)
    assert 0 < decorrelation_penalty(_features(8, 20)).item() < 1


def test_max_rows_estimates_from_every_kth_row():
    z = _features(4, 25, 6)  # 100 rows
    rows = z.reshape(100, 6)
    assert decorrelation_penalty(z, max_rows=100).item() == decorrelation_penalty(z).item()
    for max_rows, stride in ((99, 2), (50, 2), (34, 3), (2, 50)):
        assert decorrelation_penalty(z, max_rows=max_rows).item() == pytest.approx(
            decorrelation_penalty(rows[::stride]).item(), rel=1e-12)
    with pytest.raises(ValueError, match="max_rows"):
        decorrelation_penalty(z, max_rows=1)


def test_a_constant_feature_keeps_the_gradient_finite():
    z = _features(12, 3)
    z[:, 1] = 4.0
    z.requires_grad_(True)
    decorrelation_penalty(z).backward()
    assert torch.isfinite(z.grad).all()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="D >= 2"):
        decorrelation_penalty(_features(5, 1))
    with pytest.raises(ValueError, match="D >= 2"):
        decorrelation_penalty(_features(5))
    with pytest.raises(ValueError, match="2 finite rows"):
        decorrelation_penalty(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]]))
