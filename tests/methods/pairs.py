"""Tiny sparse-view pairs for the method tests: 16x16 ellipse phantoms and their FBP
reconstructions from 4 and 8 views."""

import numpy as np
import torch

from contrastive_signals.data.ct_phantoms import EllipseSpec, ellipse_phantoms
from contrastive_signals.data.sparse_view_ct import sparse_view_pairs
from contrastive_signals.training.fit import FitConfig, fit

SIZE, VIEWS = 16, (4, 8)


def tiny_pairs(count: int = 8, seed: int = 0) -> dict:
    """A pairs part ``{"clean": [count, 16, 16], "noisy": {4: ..., 8: ...}}``."""
    clean = torch.from_numpy(ellipse_phantoms(count, size=SIZE, spec=EllipseSpec(),
                                              rng=np.random.default_rng(seed)))
    return sparse_view_pairs({"train": clean}, size=SIZE, views=VIEWS, train_views=VIEWS,
                             device="cpu")["train"]


def fit_method(method, model, train: dict, *, epochs: int, batch_size: int = 4,
               learning_rate: float = 1e-2):
    """``method`` fitted by the one loop on ``train`` (its hooks stepped by fit)."""
    config = FitConfig(epochs=epochs, learning_rate=learning_rate, device="cpu", progress=False,
                       cosine_schedule=False, seed=0)
    return fit(method.build(model), loss_fn=method.loss, hooks=method, config=config,
               batches=method.batches(train, batch_size=batch_size, epochs=epochs))


def fit_on_one_batch(method, model, train: dict, *, steps: int, batch_size: int = 4,
                     learning_rate: float = 1e-2):
    """``method`` fitted by the one loop for ``steps`` steps on the first batch of ``train``
    (so that the loss falls unless the images change), one step per epoch."""
    first = next(iter(method.batches(train, batch_size=batch_size, epochs=steps)(
        0, torch.Generator().manual_seed(0))))
    config = FitConfig(epochs=steps, learning_rate=learning_rate, device="cpu", progress=False,
                       cosine_schedule=False, seed=0)
    return fit(method.build(model), loss_fn=method.loss, hooks=method, config=config,
               batches=lambda epoch, generator: [first])
