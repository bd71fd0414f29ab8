"""wav2vec's network pretrained on HuBERT-style targets: each masked frame predicts, per input
channel, the k-means cluster of that frame's log band powers (issue 17 item 5; docs/wav2vec.md
"Per-channel cluster targets"); or, with ``--teacher``, HuBERT's second iteration: the cluster
of the frame's contextualised representation under an earlier run's encoder.

Why: wav2vec 2.0's targets are quantised encoder frames, which the codebook may learn without
the EOG; rapid eye movements, what tells REM apart in these nights, are then never a target.
Here every channel's spectrum is a target of its own (Hsu et al. 2021, HuBERT, first iteration:
clusters of hand-made features), so the context network must predict the EOG's low-frequency
power of a masked frame from its neighbours, which REM stretches make more likely.

Runs in a project copy after `kedro run --pipeline=wav2vec --env=wav2vec_context` (at least to
its subject split), with the same network, masking, optimiser and schedule as that pretraining
(``wav2vec.pretraining``); saves the feature encoder and context network as a new version of the
copy's ``wav2vec.encoder``, which `benchmarks/wav2vec_fine_tuning.py PROJECT` then fine-tunes.

    PYTHONPATH=src python benchmarks/wav2vec_cluster_targets.py PROJECT --epochs 40
    PYTHONPATH=src python benchmarks/wav2vec_cluster_targets.py PROJECT --epochs 40 \
        --teacher PROJECT/data/06_models/wav2vec_encoder.pt/<version>/wav2vec_encoder.pt
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from torch import nn

from contrastive_signals.config import from_params
from contrastive_signals.data.sleep_epochs import recordings_of, segment_sampler
from contrastive_signals.methods.label_efficiency import LabelEfficiencyParams
from contrastive_signals.methods.wav2vec import Wav2VecMethod, Wav2VecPretraining
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.models.wav2vec import Wav2Vec2, span_mask
from contrastive_signals.pipelines.wav2vec.nodes import pretrained_bundle, stager_encoder_config
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import LossOutput, fit

ENV = "wav2vec_context"
# Hz; the delta, theta, alpha, sigma, beta and EMG ranges, the first also the eye movements'
BANDS = ((0.3, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 16.0), (16.0, 30.0), (30.0, 45.0))


def frame_band_powers(x: torch.Tensor, *, frames: int, sampling_rate: float) -> torch.Tensor:
    """Log band powers ``[B, T, C, len(BANDS)]`` of ``x`` ``[B, C, L]`` cut into ``T`` equal
    chunks (the encoder's frames), each Hann-windowed."""
    batch, channels, length = x.shape
    chunk = length // frames
    pieces = x[..., :frames * chunk].reshape(batch, channels, frames, chunk).transpose(1, 2)
    spectrum = torch.fft.rfft(pieces * torch.hann_window(chunk, dtype=x.dtype), dim=-1).abs() ** 2
    hz = torch.fft.rfftfreq(chunk, d=1.0 / sampling_rate)
    bands = torch.stack([(hz >= low) & (hz < high) for low, high in BANDS], dim=-1).to(x.dtype)
    return torch.log(spectrum @ bands + 1e-6)


def teacher_frames(teacher: nn.Module) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """Target features from an earlier run's encoder (frozen): ``[B, T, 1, D]`` (one group)."""
    def features(x: torch.Tensor, frames: int) -> torch.Tensor:
        with torch.no_grad():
            return teacher(x).transpose(1, 2).unsqueeze(2)

    return features


class ClusterTargets:
    """Per target group (an input channel, or one for a teacher's frames), k-means of the
    standardised frame features; ``assign`` gives the nearest centre of every (frame, group):
    ``[B, T, G]`` int64."""

    def __init__(self, features: torch.Tensor, *, clusters: int, seed: int) -> None:
        """``features`` ``[N, G, F]`` (frames of training sequences)."""
        self.mean = features.mean(0)
        self.std = features.std(0) + 1e-6
        scaled = ((features - self.mean) / self.std).numpy()
        self.centres = torch.stack([
            torch.from_numpy(KMeans(clusters, n_init=4, random_state=seed).fit(
                scaled[:, c]).cluster_centers_).float() for c in range(features.shape[1])])

    def assign(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.mean) / self.std                       # [B, T, G, F]
        distances = ((scaled.unsqueeze(-2) - self.centres) ** 2).sum(-1)  # [B, T, G, K]
        return distances.argmin(-1)

    def usage(self, targets: torch.Tensor) -> list[float]:
        """Perplexity of the cluster use per group (1: one cluster, K: uniform)."""
        out = []
        for c in range(targets.shape[-1]):
            p = torch.bincount(targets[..., c].flatten(), minlength=len(self.centres[c])).float()
            p = p / p.sum()
            out.append(float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())))
        return out


class ClusterPredictor(nn.Module):
    """wav2vec's network (``w2v``; its quantiser unused) with HuBERT's prediction head: per
    target group a projection of the context vector, scored by cosine against learned cluster
    embeddings / ``temperature``."""

    def __init__(self, w2v: Wav2Vec2, *, groups: int, clusters: int, final_dim: int,
                 temperature: float = 0.1) -> None:
        super().__init__()
        self.w2v = w2v
        model_dim = w2v.project.out_features
        self.head = nn.Linear(model_dim, groups * final_dim)
        self.embeddings = nn.Parameter(torch.randn(groups, clusters, final_dim))
        self.groups, self.temperature = groups, temperature

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits ``[M, G, K]`` of the masked frames (``mask`` ``[B, T]``) of ``x`` ``[B, C, L]``."""
        w2v = self.w2v
        context = w2v.masked_context(w2v.feature_norm(w2v.features(x)), mask)[mask]  # [M, D]
        h = self.head(context).view(len(context), self.groups, -1)         # [M, G, E]
        return torch.einsum("mce,cke->mck", F.normalize(h, dim=-1),
                            F.normalize(self.embeddings, dim=-1)) / self.temperature


def cluster_losses(model: ClusterPredictor, x: torch.Tensor, *, targets: ClusterTargets,
                   features_of: Callable[[torch.Tensor, int], torch.Tensor], mask_prob: float,
                   mask_span: int, generator: torch.Generator) -> LossOutput:
    """Masked cross-entropy, mean over masked frames and target groups, and the accuracy;
    ``features_of(x, frames)`` gives the target features ``[B, T, G, F]``."""
    frames = model.w2v.features(x[:1]).shape[1]
    mask = span_mask(len(x), frames, mask_prob=mask_prob, span=mask_span, generator=generator)
    labels = targets.assign(features_of(x, frames))[mask]
    logits = model(x, mask)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
    accuracy = (logits.argmax(-1) == labels).float().mean()
    return LossOutput(loss, {"cross_entropy": loss.detach(), "accuracy": accuracy})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("--epochs", type=int, default=None,
                        help="pretraining epochs (default: wav2vec.pretraining.fit.epochs)")
    parser.add_argument("--seed", type=int, default=None,
                        help="pretraining seed (default: wav2vec.pretraining.fit.seed)")
    parser.add_argument("--clusters", type=int, default=32, help="k-means clusters per channel")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="an earlier run's wav2vec.encoder file: cluster its frames instead "
                             "of band powers (HuBERT's second iteration)")
    parser.add_argument("--fit-batches", type=int, default=64,
                        help="training batches whose frames the k-means sees")
    args = parser.parse_args()
    from bench_common import project_context, sleep_epochs_of  # a sibling script module

    torch.set_num_threads(1)
    teacher = args.teacher.resolve() if args.teacher else None  # before the move into the project
    context = project_context(args.project.resolve(), ENV)
    params: dict[str, Any] = context.params["wav2vec"]
    pretraining = copy.deepcopy(params["pretraining"])
    if args.epochs is not None:
        pretraining["fit"]["epochs"] = args.epochs
    if args.seed is not None:
        pretraining["fit"]["seed"] = args.seed
    config = from_params(Wav2VecPretraining, pretraining, path="wav2vec.pretraining")
    stager = from_params(LabelEfficiencyParams, params["label_efficiency"],
                         path="wav2vec.label_efficiency").training.model
    fs = float(params["ingestion"]["target_hz"])
    epochs = sleep_epochs_of(context)
    split = context.catalog.load("wav2vec.split")
    train, val = (recordings_of(epochs, split, part) for part in ("train", "val"))
    channels = len(epochs["channels"])
    encoder_config = stager_encoder_config(stager, in_channels=channels)

    seed = config.fit.seed
    method = Wav2VecMethod(config.method, total_steps=1)
    seed_everything(seed)
    w2v = method.build_seeded("sleep_cnn", encoder_config, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ClusterPredictor(w2v, groups=1 if teacher else channels,
                                 clusters=args.clusters, final_dim=config.method.model.final_dim)
    if teacher:
        features_of = teacher_frames(from_bundle(torch.load(teacher, map_location="cpu",
                                                            weights_only=True)))
    else:
        def features_of(x, frames):
            return frame_band_powers(x, frames=frames, sampling_rate=fs)

    draw = segment_sampler(train, config.segment_epochs)
    fixed = torch.Generator().manual_seed(seed + 1)
    sample = torch.cat([draw(config.batch_size, fixed) for _ in range(args.fit_batches)])
    frames = w2v.features(sample[:1]).shape[1]
    features = features_of(sample, frames)
    start = time.perf_counter()
    targets = ClusterTargets(features.flatten(0, 1), clusters=args.clusters, seed=seed)
    usage = targets.usage(targets.assign(features))
    print(f"k-means of {len(features) * frames} frames in {time.perf_counter() - start:.0f} s; "
          f"cluster perplexity per group {[round(u, 1) for u in usage]}")

    objective = config.method.objective

    def loss_fn(model, batch, generator):
        return cluster_losses(model, batch[0], targets=targets, features_of=features_of,
                              mask_prob=objective.mask_prob, mask_span=objective.mask_span,
                              generator=generator)

    val_draw = segment_sampler(val, config.segment_epochs)
    val_gen = torch.Generator().manual_seed(seed)
    val_batches = [val_draw(config.batch_size, val_gen) for _ in range(config.val_batches)]

    @torch.no_grad()
    def validate(model):
        generator = torch.Generator().manual_seed(seed)
        parts = [cluster_losses(model, x, targets=targets, features_of=features_of,
                                mask_prob=objective.mask_prob, mask_span=objective.mask_span,
                                generator=generator).parts for x in val_batches]
        return {f"val_{key}": float(np.mean([float(p[key]) for p in parts])) for key in parts[0]}

    batches = Wav2VecMethod.batches(draw, batch_size=config.batch_size,
                                    steps=config.steps_per_epoch)
    start = time.perf_counter()
    with torch_threads(config.num_threads):
        result = fit(model, loss_fn=loss_fn, batches=batches, validate=validate,
                     config=replace(config.fit, name="wav2vec_clusters"))
    history = result.history
    print(f"pretrained {config.fit.epochs} epochs in {time.perf_counter() - start:.0f} s; "
          f"last epoch: val_accuracy {history['val_accuracy'][-1]:.3f}, val_cross_entropy "
          f"{history['val_cross_entropy'][-1]:.3f}")
    print(json.dumps({key: [round(v, 4) for v in values] for key, values in history.items()
                      if key.startswith("val_")}))
    encoder = method.export(result.model.w2v, context=True)
    bundle = pretrained_bundle(encoder, encoder_config, config.method.model.frame_context())
    context.catalog.save("wav2vec.encoder", bundle)


if __name__ == "__main__":
    main()
