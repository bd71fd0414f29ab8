"""Per-rank functions of the data-parallel tests (module level: spawned ranks import them).

Each loss case maps global inputs to a loss through one float64 linear layer wrapped in DDP, as
a method does: this rank's rows go through the layer, the outputs are gathered with gradient and
the unchanged loss runs on the global batch. The one-process reference is the same function
without ranks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from contrastive_signals.losses import (
    mined_triplet_loss,
    nt_xent_loss,
    pair_contrastive_loss,
    supervised_contrastive_loss,
)
from contrastive_signals.losses.hierarchical_contrastive import hierarchical_contrastive_loss
from contrastive_signals.losses.wav2vec import (
    perplexity,
    sample_distractors,
    wav2vec_contrastive_loss,
)
from contrastive_signals.training.ranks import (
    current_ranks,
    data_parallel_model,
    gather_with_grad,
    mean_over_ranks,
    shard,
)

N, T, D_IN, D = 8, 8, 5, 6
GROUPS, ENTRIES = 2, 3
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])  # every class on both ranks


def _instance(n: int) -> Tensor:
    return torch.arange(n).repeat(2)


# name -> (input shape after N, loss of the gathered outputs z [N, ...] and the labels [N])
TWO_VIEW = (2, D_IN)
GATHERED: dict[str, tuple[tuple[int, ...], Callable[[Tensor, Tensor], Tensor]]] = {
    "nt_xent": (TWO_VIEW, lambda z, y: nt_xent_loss(z[:, 0], z[:, 1], temperature=0.5)),
    "supcon": (TWO_VIEW, lambda z, y: supervised_contrastive_loss(
        torch.cat([z[:, 0], z[:, 1]]), y.repeat(2), temperature=0.3)),
    "pair": (TWO_VIEW, lambda z, y: pair_contrastive_loss(
        F.normalize(torch.cat([z[:, 0], z[:, 1]]), dim=1), _instance(len(z)), margin=1.0)),
    "triplet_batch_hard": ((D_IN,), lambda z, y: mined_triplet_loss(
        z, y, margin=0.5, mining="batch_hard")),
    "triplet_semi_hard": ((D_IN,), lambda z, y: mined_triplet_loss(
        z, y, margin=2.0, mining="semi_hard")),
    "ts2vec_hierarchical": ((2, T, D_IN), lambda z, y: hierarchical_contrastive_loss(
        z[:, 0], z[:, 1], alpha=0.5)),
}


def inputs(shape: tuple[int, ...], seed: int = 0) -> Tensor:
    return torch.randn((N, *shape), generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def layer(seed: int = 1, out: int = D) -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(D_IN, out).double()


def grads(model: nn.Module) -> list[Tensor]:
    return [p.grad.detach().clone() for p in model.parameters()]


class NoAllReduceGather(torch.autograd.Function):
    """The bug class to catch: SimCLR's old ``GatherLayer`` without the all-reduce in backward
    (each rank keeps only the gradient its own loss sends to its rows)."""

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


GATHERS: dict[str, Callable[[Tensor], Tensor]] = {
    "gather_with_grad": gather_with_grad,
    "no_gather": lambda z: z,                       # each rank's own shard only
    "gather_layer_bug": lambda z: NoAllReduceGather.apply(z),
}


def gathered_case(name: str, gather: str) -> tuple[float, list[Tensor]]:
    """``(loss, parameter gradients after DDP's average)`` of case ``name`` with ``gather``;
    in one process (no ranks) the reference."""
    shape, loss_fn = GATHERED[name]
    x, model = inputs(shape), layer()
    step = data_parallel_model(model)
    labels = LABELS if gather != "no_gather" else shard(LABELS)
    z = GATHERS[gather](step(shard(x))) if current_ranks() else model(x)
    loss = loss_fn(z, labels)
    loss.backward()
    return float(loss.detach()), grads(model)


def wav2vec_masks() -> tuple[Tensor, Tensor]:
    """A fixed span-free mask ``[N, T]`` (>= 2 masked steps per row) and the distractors
    ``[M, 4]`` of one process."""
    generator = torch.Generator().manual_seed(3)
    mask = torch.rand(N, T, generator=generator) < 0.5
    mask[:, :2] = True
    return mask, sample_distractors(mask, num_negatives=4, generator=generator)


def wav2vec_case(name: str) -> tuple[float, list[Tensor]]:
    """wav2vec's terms reduced over ranks (:func:`mean_over_ranks`): ``contrastive`` (context
    and quantised vectors from one layer, distractors within each sequence) and ``diversity``
    (``1 - perplexity / GV`` of the codeword use averaged over all frames, the diversity loss
    without its float32 cast of bf16 values)."""
    x = inputs((T, D_IN), seed=4)
    model = layer(seed=5, out=2 * D if name == "contrastive" else GROUPS * ENTRIES)
    step = data_parallel_model(model)
    z = step(shard(x))                                            # [n, T, out]
    if name == "diversity":
        probs = z.reshape(-1, GROUPS, ENTRIES).softmax(-1).mean(0)
        loss = 1 - perplexity(mean_over_ranks(probs)) / (GROUPS * ENTRIES)
    else:
        mask, negatives = wav2vec_masks()
        ranks = current_ranks()
        if ranks is not None:  # this rank's masked steps are one block of the global ones
            counts = mask.sum(1)
            rows = ranks.shard(N)
            first, stop = int(counts[:rows.start].sum()), int(counts[:rows.stop].sum())
            negatives, mask = negatives[first:stop] - first, mask[rows]
        local, _ = wav2vec_contrastive_loss(z[..., :D][mask], z[..., D:][mask], negatives,
                                            temperature=0.2)
        loss = mean_over_ranks(local, mask.sum())
    loss.backward()
    return float(loss.detach()), grads(model)


def pml_efficient_case() -> tuple[float, list[Tensor]]:
    """pytorch-metric-learning's ``DistributedLossWrapper(efficient=True)`` around its NT-Xent
    (the same loss as ours with instance labels): local anchors against the gathered batch,
    no gradient through the other ranks' rows."""
    from pytorch_metric_learning.losses import NTXentLoss
    from pytorch_metric_learning.utils.distributed import DistributedLossWrapper

    x, model = inputs(TWO_VIEW), layer()
    step = data_parallel_model(model)  # kept alive until backward (DDP's reducer)
    z = step(shard(x))                                            # [n, 2, D]
    n = len(z)
    labels = torch.arange(n).repeat(2) + current_ranks().rank * n
    loss = DistributedLossWrapper(NTXentLoss(temperature=0.5), efficient=True)(
        torch.cat([z[:, 0], z[:, 1]]), labels)
    loss.backward()
    return float(loss.detach()), grads(model)


def all_cases() -> dict[str, tuple[float, list[Tensor]]]:
    """Every case on this rank (one launch for all of them)."""
    results = {f"{name}/{gather}": gathered_case(name, gather)
               for name in GATHERED for gather in GATHERS}
    results |= {f"wav2vec_{name}/gather_with_grad": wav2vec_case(name)
                for name in ("contrastive", "diversity")}
    results["nt_xent/pml_efficient"] = pml_efficient_case()
    results["rank"] = (float(current_ranks().rank), [])
    return results


# ---- supervised methods: each rank runs its shard of the batch ------------------------------


def _sleep_stager_case():
    from contrastive_signals.methods.sleep_stager import (
        SleepStagerMethod,
        SleepStagerParams,
        StagerParams,
    )
    from contrastive_signals.models.registry import build_model

    model = StagerParams(base_channels=4, embedding_dim=8, hidden_dim=8, dropout=0.0)
    method = SleepStagerMethod(SleepStagerParams(window=3, batch_size=4, model=model))
    net = build_model("sleep_stager", {"in_channels": 2, **vars(model)}, seed=0)
    generator = torch.Generator().manual_seed(5)
    windows = torch.randn(4, 3, 2, 3000, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 5, (4, 3), generator=generator)
    return method, net, (windows, labels)


def _ctc_case():
    from contrastive_signals.data.segment_sequences import SegmentSequenceSpec
    from contrastive_signals.methods.ctc import CTCMethod, CTCTrainParams, SequenceModelParams
    from contrastive_signals.models.registry import build_model

    spec = SegmentSequenceSpec(length=160, min_segment=20, max_segment=60)
    model = SequenceModelParams(architecture="ctc_cnn", channels=8, kernel_size=5, downsample=8,
                                num_layers=3)
    method = CTCMethod(CTCTrainParams(model=model, batch_size=4, steps_per_epoch=1), spec)
    net = build_model("ctc_cnn", model.model_config(in_channels=1, num_classes=3), seed=0)
    signals, targets, lengths = next(iter(method.batches()(0, torch.Generator().manual_seed(2))))
    return method, net, (signals.double(), targets, lengths)


def _image_regression_case():
    from contrastive_signals.methods.regression import ImageRegression
    from contrastive_signals.models.registry import build_model

    net = build_model("residual_unet", {"base_channels": 4, "depth": 2}, seed=0)
    clean, noisy = torch.rand(2, 4, 1, 16, 16, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    return ImageRegression(), net, (clean, noisy, torch.zeros(4))


def _hvae_split_case(swap_fraction: float = 1.0):
    from contrastive_signals.methods.hvae import HVAELossParams, HVAESplit
    from contrastive_signals.models.registry import build_model

    config = {"image_size": 16, "channels": (4, 4, 8), "latent_stride": 2, "spatial_signal": 2,
              "spatial_noise": 1, "global_signal": 3, "global_noise": 2}
    net = build_model("hvae", config, seed=0)
    loss = HVAELossParams(beta=0.1, signal_weight=2.0, noise_weight=2.0, swap_weight=1.0,
                          inject_weight=1.0, swap_fraction=swap_fraction)
    clean, noisy = torch.rand(2, 3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    # float32: the HVAE's latents are float32 by design (models/hvae.py). 3 images: the removal decodes 3 rows and the injection 2 (views 0, 0, 1), so the
    # removal pads its rows to split over 2 ranks
    return HVAESplit(loss), net, (clean, noisy, torch.tensor([0, 0, 1]))


SUPERVISED = {"sleep_stager": _sleep_stager_case, "ctc": _ctc_case,
              "image_regression": _image_regression_case, "hvae_split": _hvae_split_case,
              # a share of the swap pairs: removal 2 rows of 3, injection 1 of 2 (padded)
              "hvae_split_share": functools.partial(_hvae_split_case, swap_fraction=0.5)}


def supervised_case(name: str) -> tuple[float, list[Tensor], list[int]]:
    """``(loss, parameter gradients after DDP's average, batch sizes the network saw)`` of one
    step of method ``name`` (in its batch's dtype, float64 but for the HVAE; eval mode: BatchNorm from its running statistics, so
    that shards and the whole batch see the same normalisation); in one process the
    reference."""
    method, net, batch = SUPERVISED[name]()
    model = method.build(net).to(batch[0].dtype).eval()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    every = getattr(method, "uses_every_parameter", False)  # as fit wraps it
    step = data_parallel_model(model, every_parameter_used=every) if current_ranks() else model
    loss = method.loss(step, batch, torch.Generator().manual_seed(0))
    loss.backward()
    return float(loss.detach()), grads(model), seen


# ---- fit level: SimCLR through the method and fit, float64 ----------------------------------

FIT_N, FIT_BATCH = 24, 8  # 3 optimiser steps in one epoch


class NoiseViews:
    """Two views by additive noise drawn from fit's generator (dtype of the input)."""

    def two_views(self, x: Tensor, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        noise = torch.randn((2, *x.shape), generator=generator, dtype=x.dtype)
        return x + 0.3 * noise[0], x + 0.3 * noise[1]


class TinyEncoder(nn.Module):
    """``[B, D_IN] -> [B, 4]``, with BatchNorm optionally (after a bias-free layer: a bias
    before BatchNorm has a gradient of 0 up to rounding, which AdamW's normalised step turns
    into +-lr either way, so two exact computations need not agree on it)."""

    embedding_dim = 4

    def __init__(self, batch_norm: bool):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D_IN, 8, bias=not batch_norm),
                                 *([nn.BatchNorm1d(8)] if batch_norm else []),
                                 nn.Tanh(), nn.Linear(8, 4))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PerShardForward(nn.Module):
    """One process as ``world`` ranks see a joint two-view forward: each shard's rows of both
    views in their own forward (their own BatchNorm statistics), reassembled."""

    def __init__(self, model: nn.Module, world: int):
        super().__init__()
        self.model, self.world = model, world

    def forward(self, x: Tensor, mask: Tensor | None, generator: torch.Generator) -> Tensor:
        a, b = x.chunk(2)
        outs = [self.model(torch.cat([a_r, b_r]), mask, generator).chunk(2)
                for a_r, b_r in zip(a.chunk(self.world), b.chunk(self.world), strict=True)]
        return torch.cat([torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])])


class RecordingMethod:
    """A method that records the sample ids of the rows this rank encodes (batch ``(x, ids)``)."""

    def __init__(self, method, per_shard: int = 0):
        self.method, self.per_shard, self.seen = method, per_shard, []

    def loss(self, model, batch, generator):
        self.seen.append(shard(batch[1]).tolist())
        if self.per_shard:
            model = PerShardForward(model, self.per_shard)
        return self.method.loss(model, batch, generator)

    def on_step_end(self, model, step):
        pass

    def on_epoch_end(self, model, epoch):
        return {}


def simclr_fit(batch_norm: bool, *, strategy: str = "single", per_shard: int = 0,
               device: str = "cpu", **fit_fields) -> tuple[dict[str, Tensor], list[list[int]]]:
    """SimCLR (NT-Xent, joint forward) of :class:`TinyEncoder` for 3 steps on ``device``;
    returns the trained parameters (on the CPU) and the ids each step's rows had on this rank."""
    from contrastive_signals.methods.base import HeadParams
    from contrastive_signals.methods.two_view import TwoViewMethod, TwoViewParams
    from contrastive_signals.training.fit import FitConfig, fit

    x = torch.randn(FIT_N, D_IN, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    params = TwoViewParams(objective="simclr", temperature=0.5,
                           head=HeadParams(hidden_dim=8, out_dim=4, batch_norm=False))
    method = TwoViewMethod(params, NoiseViews(), modality="image", output="instance")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        encoder = TinyEncoder(batch_norm)
    model = method.build(encoder, seed=12).double()
    recorder = RecordingMethod(method, per_shard)
    config = FitConfig(epochs=1, learning_rate=0.05, weight_decay=0.01, seed=3, progress=False,
                       warmup_epochs=0, cosine_schedule=False, strategy=strategy,
                       device=device, **fit_fields)
    result = fit(model, loss_fn=recorder.loss,
                 batches=method.batches(x, torch.arange(FIT_N), batch_size=FIT_BATCH),
                 config=config, hooks=recorder)
    return ({k: v.detach().cpu().clone() for k, v in result.model.named_parameters()},
            recorder.seen)


def fit_cases() -> dict[str, tuple[dict[str, Tensor], list[list[int]]]]:
    """This rank's SimCLR fits, with and without BatchNorm (one launch for both)."""
    ranks = current_ranks()
    return {f"bn={bn}": simclr_fit(bn, strategy="ddp", devices=ranks.world_size)
            for bn in (False, True)}


def odd_rows_case() -> tuple[float, list[Tensor], list[int]]:
    """``(loss, gradients after DDP's average, rows the layer saw)`` of a layer run through
    :func:`local_forward_rows` on 5 rows (padded to 6 on 2 ranks) with two outputs of one
    dtype (gathered in one collective); the loss weights every row differently."""
    from contrastive_signals.training.ranks import local_forward_rows

    model = layer(seed=7)
    seen: list[int] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    step = data_parallel_model(model) if current_ranks() else model
    x = inputs((D_IN,), seed=8)[:5]
    out, squared = local_forward_rows(lambda t: (step(t), step(t).square()), x)
    weights = torch.arange(1, 6, dtype=x.dtype)[:, None]
    loss = (weights * (out + squared)).sum()
    loss.backward()
    return float(loss.detach()), grads(model), seen


def validation_models() -> tuple[nn.Module, nn.Module, dict]:
    """A small HVAE and U-Net and a validation part of 5 images (an odd count: the ranks'
    shares are padded)."""
    from contrastive_signals.models.registry import build_model
    from tests.methods.pairs import SIZE, tiny_pairs

    hvae = build_model("hvae", {"image_size": SIZE, "channels": (4, 8, 8), "spatial_signal": 2,
                                "spatial_noise": 1, "global_signal": 4, "global_noise": 2},
                       seed=0)
    unet = build_model("residual_unet", {"base_channels": 4, "depth": 2}, seed=1)
    return hvae.eval(), unet.eval(), tiny_pairs(count=5)


def validation_case() -> dict[str, float]:
    """The denoising validation scores as this rank computes them (each rank decodes its share
    of the images)."""
    from contrastive_signals.metrics.denoising import denoiser_psnr, swap_psnr
    from contrastive_signals.training.ranks import local_forward_rows

    hvae, unet, part = validation_models()
    rows: dict[str, int] = {"hvae_rows": 0, "unet_rows": 0}  # the most images one pass saw

    def seen(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            rows[name] = max(rows[name], inputs[0].shape[0])
        return hook

    hvae.encoder_stem.register_forward_pre_hook(seen("hvae_rows"))
    unet.register_forward_pre_hook(seen("unet_rows"))
    with torch.no_grad():
        # as the denoising nodes validate
        return {"swap_psnr": swap_psnr(hvae, part, map_rows=local_forward_rows),
                "denoiser_psnr": denoiser_psnr(unet, part, map_rows=local_forward_rows), **rows}


def everything() -> dict[str, dict]:
    """The loss cases and the fits of this rank: one launch for the whole module."""
    return {"losses": all_cases(), "fits": fit_cases(), "carried": carried_value(),
            "supervised": {name: supervised_case(name) for name in SUPERVISED},
            "odd_rows": odd_rows_case(), "validation": validation_case()}


def failing_loss(model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator
                 ) -> Tensor:
    """A loss that turns NaN on rank 1 only (at its first step)."""
    loss = model(batch[0]).square().mean()
    return loss * float("nan") if current_ranks().rank == 1 else loss


CARRIED: ContextVar[str | None] = ContextVar("carried", default=None)


def carried_value() -> str | None:
    """What this rank sees of :data:`CARRIED`."""
    return CARRIED.get()


def wav2vec_fit(targets: str = "quantizer", **fit_fields):
    """A small wav2vec fit (2 epochs of 3 steps, global batch 4, validation) with quantiser or
    cluster ``targets`` (the k-means fitted here, before the launch); returns the method and
    the fit result."""
    from contrastive_signals.methods.wav2vec import (
        ContextParams,
        Wav2VecMethod,
        Wav2VecObjective,
        Wav2VecParams,
    )
    from contrastive_signals.training.fit import FitConfig, fit

    params = Wav2VecParams(
        model=ContextParams(model_dim=16, ff_dim=32, codebook_entries=8, code_dim=16,
                            final_dim=16, layers=1, dropout=0.0),
        objective=Wav2VecObjective(mask_prob=0.5, mask_span=2, num_negatives=4,
                                   cross_sample_negatives=2, targets=targets, clusters=4,
                                   cluster_bands=((0.5, 4.0), (4.0, 12.0), (12.0, 40.0))))
    x = torch.randn(12, 3, 800, generator=torch.Generator().manual_seed(0))
    method = Wav2VecMethod(params, total_steps=6)
    model = method.build_seeded("w2v_conv", {"in_channels": 3,
                                             "layers": [[8, 10, 5], [8, 3, 2], [8, 3, 2]]}, seed=0)
    method.fit_targets(model, x, sampling_rate=100.0, seed=0)
    batches = Wav2VecMethod.batches(
        lambda count, generator: x[torch.randint(len(x), (count,), generator=generator)],
        batch_size=4, steps=3)
    config = FitConfig(epochs=2, learning_rate=1e-3, grad_clip_norm=1.0, progress=False,
                       device="cpu", max_nonfinite_steps=10, name="wav2vec", **fit_fields)
    result = fit(model, loss_fn=method.loss, batches=batches, config=config, hooks=method,
                 validate=method.validation([x[:4]], seed=0))
    return method, result
