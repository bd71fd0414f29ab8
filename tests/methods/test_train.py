"""A method trained in one call, and triplet fine-tuning followed by a classifier head."""

import pytest
import torch

from contrastive_signals.methods.supervised import ClassifierParams
from contrastive_signals.methods.train import HeadStage, triplet_then_head
from contrastive_signals.methods.triplet import TripletParams
from contrastive_signals.models.registry import build_model
from contrastive_signals.training.fit import FitConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = {"in_channels": 1, "length": 16, "channels": [4], "embedding_dim": 4, "num_classes": 2}
FIT = FitConfig(epochs=1, learning_rate=1e-2, device="cpu", progress=False)


def _data(n: int):
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, 1, 16, generator=g), torch.arange(n) % 2


@pytest.mark.parametrize("train_encoder", [False, True])
def test_triplet_then_head(train_encoder):
    model = build_model("curve_cnn", CONFIG, seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    history = triplet_then_head(
        model, _data(8), _data(4), triplet=TripletParams(classes_per_batch=2, samples_per_class=2,
                                                         batches_per_epoch=2),
        triplet_fit=FIT, head=HeadStage(fit=FIT, classifier=ClassifierParams(batch_size=4),
                                        train_encoder=train_encoder))
    assert {"triplet.train_loss", "triplet.val_knn_acc", "head.train_loss", "head.val_loss",
            "head.val_acc"} <= set(history)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, start[k])}
    assert "head.2.weight" in changed and "features.0.weight" in changed


def test_the_head_stage_checks_its_flag():
    with pytest.raises(ValueError, match="train_encoder must be true or false"):
        HeadStage(fit=FIT, classifier=ClassifierParams(), train_encoder="no")
