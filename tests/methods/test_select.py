"""Choosing a method by name: its settings, requirements and batches."""

import pytest
import torch

from contrastive_signals.augment.signals import SignalAugmentation
from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.methods.select import MethodParams, method_batches, requirements
from contrastive_signals.methods.triplet import TripletMethod
from contrastive_signals.methods.ts2vec import Ts2VecMethod
from contrastive_signals.methods.two_view import TwoViewMethod
from contrastive_signals.models.registry import get_entry


def test_names_and_requirements():
    assert requirements("supcon").needs_labels and requirements("triplet").needs_labels
    assert not requirements("simclr").needs_labels and not requirements("pair").needs_labels
    assert requirements("ts2vec").modalities == ("series",)
    with pytest.raises(ParameterError, match=r"p: method must be one of \('simclr'"):
        from_params(MethodParams, {"method": "byol"}, path="p")


def test_the_two_view_objective_is_the_method():
    params = from_params(MethodParams, {"method": "pair", "two_view": {"margin": 2.0}}, path="p")
    method = params.build(get_entry("gru"), views=SignalAugmentation(), seed=0)
    assert isinstance(method, TwoViewMethod) and method.params.objective == "pair"
    with pytest.raises(ParameterError, match="two_view.objective is set by method"):
        from_params(MethodParams, {"method": "simclr", "two_view": {"objective": "supcon"}},
                    path="p")
    with pytest.raises(ValueError, match="needs a view augmentation"):
        MethodParams(method="simclr").build(get_entry("gru"), seed=0)


def test_each_name_builds_its_method():
    entry = get_entry("dilated_conv")
    assert isinstance(MethodParams(method="triplet").build(entry, seed=0), TripletMethod)
    ts2vec = MethodParams(method="ts2vec").build(entry, seed=3)
    assert isinstance(ts2vec, Ts2VecMethod) and ts2vec.seed == 3


def test_batches_by_method():
    x, mask, labels = torch.randn(8, 5, 1), torch.ones(8, 5, dtype=torch.bool), torch.arange(8) % 2
    entry = get_entry("gru")
    views = SignalAugmentation()
    supcon = MethodParams(method="supcon").build(entry, views=views, seed=0)
    (batch, *_) = method_batches(supcon, x, labels=labels, mask=mask, batch_size=4)(
        0, torch.Generator().manual_seed(0))
    assert [t.shape for t in batch] == [(4, 5, 1), (4, 5), (4,)]
    simclr = MethodParams(method="simclr").build(entry, views=views, seed=0)
    (batch, *_) = method_batches(simclr, x, labels=labels, mask=mask, batch_size=4)(
        0, torch.Generator().manual_seed(0))
    assert len(batch) == 2  # labels unused
    with pytest.raises(ValueError, match="TripletMethod needs the labels"):
        method_batches(MethodParams(method="triplet").build(entry, seed=0), x, mask=mask,
                       batch_size=4)
