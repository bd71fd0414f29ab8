"""Training recipes of the ``timeseries`` pipeline, on top of the project's one fit loop.

No Kedro, no MLflow, no file I/O: tensors in, modules and histories out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from contrastive_signals.augment.signals import SignalAugmentation
from contrastive_signals.losses.hierarchical_contrastive import (
    contextual_crop_views,
    hierarchical_contrastive_loss,
)
from contrastive_signals.losses.ntxent import nt_xent_loss
from contrastive_signals.models.ts_encoders import (
    DilatedConvEncoder,
    build_ts_encoder,
    build_ts_encoder_with_rng_state,
    max_pool_time,
)
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.device import seed_everything
from contrastive_signals.training.fit import FitConfig, FitResult, fit
from contrastive_signals.training.ts2vec_draws import Ts2VecDraws, ts2vec_torch_seed

from .params import MethodParams


def iteration_batches(*tensors: Tensor, batch_size: int, iterations: int,
                      draws: Ts2VecDraws | None = None
                      ) -> tuple[int, Callable[[int, torch.Generator], Iterator]]:
    """TS2Vec's budget in optimiser steps: ``(epochs, batches_fn)`` where ``batches_fn(epoch,
    generator)`` yields shuffled mini-batches (last partial batch dropped) and the epochs
    together yield exactly ``iterations`` batches. Each epoch's order comes from ``draws`` (as
    the authors' DataLoader shuffles) when given, else from ``generator``."""
    n = tensors[0].shape[0]
    size = min(batch_size, n)
    per_epoch = max(1, n // size)
    epochs = math.ceil(iterations / per_epoch)

    def batches(epoch: int, generator: torch.Generator) -> Iterator[tuple[Tensor, ...]]:
        remaining = iterations - epoch * per_epoch
        order = draws.epoch_order(n) if draws is not None else torch.randperm(
            n, generator=generator)
        for i in range(min(per_epoch, remaining)):
            index = order[i * size:(i + 1) * size]
            yield tuple(t[index] for t in tensors)

    return epochs, batches


def default_iterations(x: Tensor) -> int:
    """TS2Vec's default budget when none is given: 200 optimiser steps for a training array
    ``x`` ``[N, T, C]`` of at most 100,000 values (padding included), 600 for a larger one."""
    return 200 if x.numel() <= 100_000 else 600


def centre_padded_series(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Move each series of ``x`` ``[N, T, C]`` (mask ``[N, T]``) so that its padding is split
    between both ends (the extra step, if any, at the end), as TS2Vec does with its training
    set when some series are shorter than others. Returns new ``(x, mask)``; padding stays 0.

    Assumes each series' valid steps are contiguous (padding before and/or after them).
    """
    n, t = mask.shape
    steps = torch.arange(t)
    first = torch.where(mask, steps, t).amin(1)  # leading padding, [N]
    trailing = t - 1 - torch.where(mask, steps, -1).amax(1)  # trailing padding, [N]
    shift = (first + trailing) // 2 - first  # > 0 moves the series right
    source = steps.view(1, t) - shift.view(n, 1)  # [N, T]: where each new step reads from
    inside = (source >= 0) & (source < t)
    rows = torch.arange(n).view(n, 1)
    centred_mask = mask[rows, source.clamp(0, t - 1)] & inside
    centred = torch.where(centred_mask.unsqueeze(-1), x[rows, source.clamp(0, t - 1)], 0.0)
    return centred.to(x.dtype), centred_mask


class _ProjectedEncoder(nn.Module):
    """Encoder + MLP projection head on the max-pooled embedding (SimCLR)."""

    def __init__(self, encoder: nn.Module, hidden_dim: int, projection_dim: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(encoder.output_dim, hidden_dim), nn.ReLU(),
                                  nn.Linear(hidden_dim, projection_dim))

    def forward(self, x: Tensor, mask: Tensor, generator: torch.Generator | None = None
                ) -> Tensor:
        return self.head(max_pool_time(self.encoder(x, mask, generator), mask))


def encode_view(encoder: nn.Module, x: Tensor, mask: Tensor, draws: Ts2VecDraws) -> Tensor:
    """``encoder``'s training-mode output ``[B, T, D]`` for one crop ``x`` ``[B, T, C]``, with
    TS2Vec's timestamp mask (for its dilated encoder) and dropout drawn from ``draws``."""
    if isinstance(encoder, DilatedConvEncoder) and encoder.mask_p > 0:
        keep = draws.timestamp_keep(*mask.shape, keep_p=1 - encoder.mask_p)
        return encoder(x, mask, draws.torch, keep=keep)
    return encoder(x, mask, draws.torch)


def pretrain_encoder(x: Tensor, mask: Tensor, method: MethodParams, *, name: str,
                     progress: bool = False) -> tuple[nn.Module, FitResult]:
    """Pretrain ``method``'s encoder on ``x`` ``[N, T, C]`` (mask ``[N, T]``) without labels.

    Returns:
        the encoder to evaluate (the SWA average of the weights when ``method.swa``) and the
        fit result (history of the training loss).
    """
    # The SimCLR head's weights and the Transformer's dropout draw from torch's global
    # generator: pin it, so the same seed gives the same encoder whatever ran before.
    seed_everything(method.seed)
    # The hierarchical objective seeds and draws as the authors' code does (weights, crops,
    # masks, shuffling, dropout), so the same seed reproduces their run: training/ts2vec_draws.py.
    hierarchical = method.objective == "hierarchical"
    encoder, torch_state = build_ts_encoder_with_rng_state(
        method.architecture, x.shape[2], method.encoder,
        seed=ts2vec_torch_seed(method.seed) if hierarchical else method.seed)
    draws = Ts2VecDraws.after_weights(method.seed, torch_state) if hierarchical else None
    augmentation = SignalAugmentation(**method.augmentation)
    model: nn.Module = encoder
    if method.objective == "simclr":
        model = _ProjectedEncoder(encoder, method.projection_hidden_dim, method.projection_dim)
    average = AveragedModel(encoder) if method.swa else None
    if average is not None:
        # TS2Vec's average starts from the initial weights: 1 + iterations snapshots in all.
        average.update_parameters(encoder)
    steps = [0]

    def loss_fn(net: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        # The average is updated with the weights after each optimiser step; the update for
        # step k runs here, at the start of step k + 1 (the last one after fit returns).
        if average is not None and steps[0] > 0:
            average.update_parameters(encoder)
        steps[0] += 1
        xb, mb = batch
        if draws is not None:
            x1, m1, x2, m2, overlap = contextual_crop_views(
                xb, mb, generator=draws.numpy, temporal_unit=method.temporal_unit)
            z1 = encode_view(net, x1, m1, draws)[:, -overlap:]
            z2 = encode_view(net, x2, m2, draws)[:, :overlap]
            return hierarchical_contrastive_loss(z1, z2, alpha=method.alpha,
                                                 temporal_unit=method.temporal_unit)
        # Views keep the series' mask: a shift or warp may move signal into padded steps,
        # which the encoder then ignores (equal-length sets have no padding).
        view_a, view_b = augmentation.two_views(xb, generator=generator)
        z = net(torch.cat([view_a, view_b]), torch.cat([mb, mb]), generator)
        return nt_xent_loss(*z.float().chunk(2), temperature=method.temperature)

    iterations = method.iterations if method.iterations is not None else default_iterations(x)
    if hierarchical and not (mask[:, 0].all() and mask[:, -1].all()):
        # TS2Vec trains on unequal-length series centred in the padded array, so that random
        # crops meet padding on both sides (evaluation encodes them as stored).
        x, mask = centre_padded_series(x, mask)
    epochs, batches = iteration_batches(x, mask, batch_size=method.batch_size,
                                        iterations=iterations, draws=draws)
    config = FitConfig(epochs=epochs, learning_rate=method.learning_rate,
                       weight_decay=method.weight_decay, seed=method.seed,
                       cosine_schedule=False, amp=False, progress=progress, name=name,
                       device="cpu")
    result = fit(model, loss_fn=loss_fn, batches=batches, config=config)
    if average is None:
        return encoder.eval(), result
    average.update_parameters(encoder)
    return average.module.eval(), result


def train_supervised_classifier(x: Tensor, y: Tensor, *, architecture: str,
                                encoder_config: dict, epochs: int, batch_size: int,
                                learning_rate: float, weight_decay: float, seed: int,
                                name: str) -> nn.Module:
    """Encoder + MLP head on the max-pooled embedding, trained with cross-entropy on
    ``x`` ``[N, T, C]``, ``y`` ``[N]``. Returns the classifier ``[B, T, C] -> [B, classes]``."""
    seed_everything(seed)  # dropout draws from torch's global generator
    encoder = build_ts_encoder(architecture, x.shape[2], encoder_config, seed=seed)
    classes = int(y.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _ProjectedEncoder(encoder, encoder.output_dim, classes)
    mask = torch.ones(x.shape[:2], dtype=torch.bool)

    def loss_fn(net: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        xb, mb, yb = batch
        return F.cross_entropy(net(xb, mb, generator), yb)

    config = FitConfig(epochs=epochs, learning_rate=learning_rate, weight_decay=weight_decay,
                       seed=seed, warmup_epochs=min(1, epochs - 1), amp=False, progress=False,
                       name=name, device="cpu")
    result = fit(model, loss_fn=loss_fn, config=config,
                 batches=lambda epoch, g: shuffled_minibatches(
                     x, mask, y, batch_size=min(batch_size, len(y)), generator=g))
    return result.model.eval()
