"""Every method on every modality whose encoder fits it: one step of ``fit`` on a tiny batch
runs, and a few optimiser steps on one fixed batch (same views, crops and dropout each time)
lower the loss; combinations that do not fit fail at parameter-check time naming both."""

from __future__ import annotations

import pytest
import torch

from contrastive_signals.augment.curves import CurveAugmentation
from contrastive_signals.augment.images import ViewAugmentation
from contrastive_signals.augment.signals import SignalAugmentation
from contrastive_signals.methods.base import HeadParams, check_compatible
from contrastive_signals.methods.select import METHODS, MethodParams, method_batches, requirements
from contrastive_signals.methods.supervised import REQUIRES as CLASSIFIER
from contrastive_signals.methods.supervised import ClassifierMethod, ClassifierParams
from contrastive_signals.methods.triplet import TripletParams
from contrastive_signals.methods.ts2vec import Ts2VecMethod
from contrastive_signals.methods.two_view import TwoViewParams
from contrastive_signals.models.registry import build_model, get_entry
from contrastive_signals.training.device import seeded_global_rng
from contrastive_signals.training.fit import FitConfig, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 12  # 3 classes x 4


def _labels() -> torch.Tensor:
    return torch.arange(N) % 3


# modality -> (architecture, config, inputs [N, ...], views)
MODALITIES = {
    "image": ("triplet_mlp", {"image_size": 8, "hidden_dims": [16], "embedding_dim": 8},
              lambda g: torch.rand(N, 1, 8, 8, generator=g),
              ViewAugmentation(crop_scale=(0.8, 1.0))),
    "signal": ("curve_cnn", {"in_channels": 1, "length": 32, "channels": [4, 4],
                             "embedding_dim": 8, "num_classes": 3},
               lambda g: torch.randn(N, 1, 32, generator=g),
               CurveAugmentation(derivative_channel=False)),
    "series": ("gru", {"in_channels": 2, "output_dim": 8, "hidden_dim": 4},
               lambda g: torch.randn(N, 16, 2, generator=g),
               SignalAugmentation(crop_p=0.0, warp_p=0.0)),
}
CASES = [(method, modality) for method in METHODS for modality in MODALITIES
         if modality in requirements(method).modalities]


def _data(modality: str):
    architecture, config, make, views = MODALITIES[modality]
    x = make(torch.Generator().manual_seed(0))
    mask = torch.ones(x.shape[:2], dtype=torch.bool) if modality == "series" else None
    return architecture, config, x, mask, views


def _method(name: str, modality: str):
    architecture, config, x, mask, views = _data(modality)
    params = MethodParams(method=name, two_view=TwoViewParams(head=HeadParams(hidden_dim=8, out_dim=4)),
                          triplet=TripletParams(margin=1.0, classes_per_batch=3,
                                                samples_per_class=4, batch_size=6))
    entry = params.check(architecture, modality=modality)
    method = params.build(entry, views=views, seed=0)
    encoder = (method.build_encoder(architecture, config) if isinstance(method, Ts2VecMethod)
               else build_model(architecture, config, seed=0))
    return method, method.build(encoder, seed=0), x, mask


def _fixed_loss(method, model, batch) -> torch.Tensor:
    """The loss with the same random draws on every call."""
    if isinstance(method, Ts2VecMethod):
        draws = method._draws
        if not hasattr(method, "_frozen"):
            method._frozen = (draws.numpy.get_state(), draws.torch.get_state())
        draws.numpy.set_state(method._frozen[0])
        draws.torch.set_state(method._frozen[1])
    with seeded_global_rng(0):
        return method.loss(model, batch, torch.Generator().manual_seed(1))


def _lowers_the_loss(method, model, batch, *, steps: int = 8, lr: float = 1e-2) -> None:
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    before = float(_fixed_loss(method, model, batch).detach())
    for step in range(steps):
        optimiser.zero_grad()
        _fixed_loss(method, model, batch).backward()
        optimiser.step()
        method.on_step_end(model, step)
    after = float(_fixed_loss(method, model, batch).detach())
    assert torch.isfinite(torch.tensor(before)) and after < before, (before, after)


@pytest.mark.parametrize(("name", "modality"), CASES)
def test_one_fit_step_runs_and_a_few_steps_lower_the_loss(name, modality):
    method, model, x, mask = _method(name, modality)
    batches = method_batches(method, x, labels=_labels(), mask=mask, batch_size=6)
    result = fit(model, loss_fn=method.loss, batches=batches, hooks=method,
                 config=FitConfig(epochs=1, learning_rate=1e-3, device="cpu", progress=False))
    assert len(result.history["train_loss"]) == 1
    batch = next(iter(batches(0, torch.Generator().manual_seed(0))))
    _lowers_the_loss(method, model, batch)


@pytest.mark.parametrize("modality", ["image", "signal"])
def test_offline_triplets_on_images_and_signals(modality):
    architecture, config, x, _, _ = _data(modality)
    params = MethodParams(method="triplet", triplet=TripletParams(sampling="offline", margin=1.0,
                                                                  batch_size=6))
    method = params.build(params.check(architecture, modality=modality), seed=0)
    model = method.build(build_model(architecture, config, seed=0))
    batches = method_batches(method, x, labels=_labels(), batch_size=6)
    _lowers_the_loss(method, model, next(iter(batches(0, torch.Generator().manual_seed(0)))))


@pytest.mark.parametrize("loss", [{}, {"loss": "hinge"},
                                  {"loss": "hinge", "hinge_kind": "crammer_singer"}],
                         ids=["cross_entropy", "weston_watkins", "crammer_singer"])
@pytest.mark.parametrize("modality", MODALITIES)
def test_supervised_classifier_on_every_modality(modality, loss):
    architecture, config, x, mask, _ = _data(modality)
    entry = get_entry(architecture)
    method = ClassifierMethod(ClassifierParams(batch_size=6, head_hidden_dim=8, **loss),
                              modality=modality, output=entry.output, num_classes=3,
                              self_classifying=entry.classifier)
    model = method.build(build_model(architecture, config, seed=0), seed=0)
    batches = method_batches(method, x, labels=_labels(), mask=mask, batch_size=6)
    _lowers_the_loss(method, model, next(iter(batches(0, torch.Generator().manual_seed(0)))))


@pytest.mark.parametrize(("method", "architecture", "message"), [
    ("ts2vec", "digit_cnn", "method 'ts2vec' needs an encoder of series data with output "
                            "per_step; 'digit_cnn' reads image data and returns instance"),
    ("ts2vec", "curve_cnn", "'curve_cnn' reads signal data and returns instance"),
    ("simclr", "w2v_conv", "method 'simclr' needs an encoder of image/signal/series data with "
                           "output instance/per_step; 'w2v_conv' reads signal data and returns "
                           "frames"),
    ("supcon", "hvae", "'hvae' reads image data and returns split_latent"),
    ("triplet", "residual_unet", "'residual_unet' reads image data and returns image"),
    ("pair", "ctc_cnn", "'ctc_cnn' reads signal data and returns frame_logits"),
])
def test_incompatible_combinations_fail_naming_method_and_encoder(method, architecture, message):
    entry = get_entry(architecture)
    with pytest.raises(ValueError, match="Encoders that fit") as error:
        MethodParams(method=method).check(architecture, modality=entry.modality)
    assert message in str(error.value)


def test_a_fitting_method_on_the_wrong_data_fails_naming_both():
    with pytest.raises(ValueError, match="method 'simclr' on series data needs an encoder of "
                                         "series data; 'curve_cnn' reads signal data"):
        MethodParams(method="simclr").check("curve_cnn", modality="series")


def test_the_classifier_needs_an_instance_or_per_step_encoder():
    with pytest.raises(ValueError, match="'sleep_stager' reads epochs data"):
        check_compatible("supervised", CLASSIFIER, "sleep_stager")
