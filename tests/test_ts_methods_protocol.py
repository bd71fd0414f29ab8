"""The side-by-side protocol of benchmarks/ts_methods.py: the methods' order alternates so that
no method always trains first, and the untimed warm-up changes no measured figure."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_TS2VEC = {"method": "ts2vec", "architecture": "dilated_conv", "iterations": 3,
               "batch_size": 4, "encoder": {"output_dim": 8, "hidden_dim": 4, "depth": 1},
               "ts2vec": {"alpha": 0.5, "temporal_unit": 0}}


@pytest.fixture
def ts_methods(monkeypatch):
    # the benchmark scripts import their siblings (bench_common) as top-level modules
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import ts_methods
    return ts_methods


def test_the_order_alternates_over_seeds_and_sets(ts_methods):
    methods = ["ts2vec", "a", "b"]
    orders = {(s, d): ts_methods.run_order(methods, seed_index=s, set_index=d, alternate=True)
              for s in range(2) for d in range(5)}
    assert orders[0, 0] == methods and orders[0, 1] == methods[::-1]
    assert orders[1, 0] == methods[::-1] and orders[1, 1] == methods
    first = [order[0] for order in orders.values()]
    assert first.count("ts2vec") == first.count("b") == 5  # each end first half the time
    assert all(sorted(order) == sorted(methods) for order in orders.values())
    assert all(ts_methods.run_order(methods, seed_index=s, set_index=d, alternate=False)
               == methods for s in range(2) for d in range(5))


def _tiny_set(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(16) % 2
    x = torch.randn(16, 12, 1, generator=g) + 4 * labels.view(-1, 1, 1).float()  # separable: the hard-margin SVM is quick
    return {"x_train": x[:10], "y_train": labels[:10], "x_test": x[10:], "y_test": labels[10:]}


def test_the_warm_up_changes_no_figure(ts_methods):
    data = _tiny_set(0)
    before = ts_methods.pretrain_and_classify(data, TINY_TS2VEC, 42, "before")
    ts_methods.warm_up({"ts2vec": TINY_TS2VEC, "other": {**TINY_TS2VEC, "seed": 7}},
                       _tiny_set(1), steps=2)
    after = ts_methods.pretrain_and_classify(data, TINY_TS2VEC, 42, "after")
    np.testing.assert_array_equal(before[0], after[0])  # the SVM's training features
    np.testing.assert_array_equal(before[1], after[1])  # its test predictions


def test_a_method_taken_from_an_earlier_output_is_not_warmed_up(ts_methods, monkeypatch):
    trained = []
    monkeypatch.setattr(ts_methods, "pretrain_series",
                        lambda *args, name, **kwargs: (trained.append(name), None))
    ts_methods.warm_up({"ts2vec": TINY_TS2VEC, "own": TINY_TS2VEC}, _tiny_set(0), steps=2,
                       skip=("ts2vec",))
    ts_methods.warm_up({"own": TINY_TS2VEC}, _tiny_set(0), steps=0)
    assert trained == ["warm_up.own"]
