# ruff: noqa: NPY002 - the test checks that global random state is left alone
"""MNIST-1D from the package's generator: default sizes, no network, no global side effects."""

import random
import socket

import numpy as np
import pytest

from contrastive_signals.data.mnist1d_data import generate_mnist1d


@pytest.mark.slow
def test_default_sizes():
    data = generate_mnist1d()
    assert data["x_train"].shape == (4000, 40) and data["x_test"].shape == (1000, 40)
    assert data["x_train"].dtype == np.float32 and set(np.unique(data["y_train"])) == set(range(10))


def test_offline_and_without_side_effects(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("the generator tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)  # get_dataset would write a pickle here
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    data = generate_mnist1d(num_samples=200)
    assert (np.random.rand(), random.random()) == expected
    assert list(tmp_path.iterdir()) == []
    assert data["x_train"].shape == (160, 40) and data["y_test"].shape == (40,)


def test_same_seed_same_data_and_overrides():
    a = generate_mnist1d(num_samples=100, seed=1)
    b = generate_mnist1d(num_samples=100, seed=1)
    c = generate_mnist1d(num_samples=100, seed=2)
    assert np.array_equal(a["x_train"], b["x_train"])
    assert not np.array_equal(a["x_train"], c["x_train"])
    assert a["x_train"].shape == (80, 40)
    assert generate_mnist1d(num_samples=50, final_seq_length=20)["x_test"].shape == (10, 20)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown MNIST-1D argument"):
        generate_mnist1d(colour="red")
    with pytest.raises(ValueError, match="num_samples"):
        generate_mnist1d(num_samples=5)
