"""Sleep staging as a supervised method: the CNN + BiLSTM stager (registry entry
``sleep_stager``) trained on windows of consecutive 30-s epochs with the joint loss
``ce_weight * CE + ctc_weight * CTC`` (:func:`~contrastive_signals.models.sleep.joint_loss`),
optionally warm-started from a pretrained epoch CNN (wav2vec's feature encoder), then staging
whole recordings (per-epoch stages and per-window CTC decodings).

Recordings are those of the epochs dataset (:mod:`contrastive_signals.data.sleep_epochs`):
``{"name", "subject", "epochs": [E, C, L], "labels": [E], "epoch_index": [E]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import cohen_kappa_score
from torch import nn

from contrastive_signals.config import require_at_least
from contrastive_signals.methods.base import Requirements, StatelessMethod
from contrastive_signals.methods.wav2vec import FrameContextParams
from contrastive_signals.metrics.ctc_decoding import beam_search_decode, greedy_decode
from contrastive_signals.models.registry import build_model, to_bundle
from contrastive_signals.models.sleep import (
    BLANK,
    SleepStager,
    collapse_repeats,
    joint_loss,
    load_encoder_features,
    predict_recording,
    window_starts,
)
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import BatchesFn, FitConfig, ValidateFn, fit
from contrastive_signals.training.ranks import current_ranks, local_forward

DECODERS = ("greedy", "beam")


@dataclass(frozen=True)
class StagerParams:
    """The stager's architecture (``sleep_stager`` in the registry)."""

    base_channels: int = 16
    embedding_dim: int = 64
    hidden_dim: int = 64
    lstm_layers: int = 1
    dropout: float = 0.2
    channel_wise_stem: bool = False  # per-channel first convolution (models/sleep.py)
    # wav2vec's context network on the CNN's frames before the epoch pooling (None: none)
    frame_context: FrameContextParams | None = None
    context_epochs: int = 1  # consecutive epochs whose frames it reads as one sequence

    def __post_init__(self) -> None:
        require_at_least(self, ("base_channels", "embedding_dim", "hidden_dim", "lstm_layers",
                                "context_epochs"), 1)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class SleepStagerParams:
    """One stager training: windows, loss weights, validation stride, model and fit."""

    window: int = 30           # consecutive epochs the BiLSTM reads (15 minutes)
    batch_size: int = 8        # windows per batch
    ce_weight: float = 1.0
    ctc_weight: float = 0.25
    label_smoothing: float = 0.0
    val_stride: int = 10       # window stride when predicting validation nights
    num_threads: int | None = None  # CPU threads while training; None: as the run set them
    model: StagerParams = field(default_factory=StagerParams)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=1, learning_rate=1e-3))

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2, got {self.window}")
        if self.batch_size < 1 or self.val_stride < 1:
            raise ValueError(f"batch_size and val_stride must be >= 1, got {self.batch_size}, "
                             f"{self.val_stride}")
        if self.ce_weight < 0 or self.ctc_weight < 0 or self.ce_weight + self.ctc_weight == 0:
            raise ValueError(f"ce_weight and ctc_weight must be >= 0 and not both 0, got "
                             f"{self.ce_weight}, {self.ctc_weight}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")


@dataclass(frozen=True)
class SleepEvaluationParams:
    stride: int = 10           # window stride for per-epoch predictions (overlaps averaged)
    decoder: str = "greedy"    # CTC decoding: greedy | beam (prefix beam search)
    beam_width: int = 8
    batch_size: int = 16
    plot_recording: int = 0    # which test recording the hypnogram plot shows
    num_threads: int | None = None  # CPU threads while predicting; None: as the run set them

    def __post_init__(self) -> None:
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got '{self.decoder}'")
        require_at_least(self, ("stride", "beam_width", "batch_size"), 1)
        if self.plot_recording < 0:
            raise ValueError(f"plot_recording must be >= 0, got {self.plot_recording}")


@dataclass(frozen=True)
class EncoderFineTuning:
    """How a pretrained epoch CNN (``encoder.features``) is fine-tuned: frozen for the first
    ``frozen_epochs`` epochs (as wav2vec 2.0 keeps its pretrained parts fixed at first, so the
    heads and the BiLSTM, built at random, do not push their first large gradients into it),
    then trained at ``lr_scale`` times the scheduled learning rate of the rest."""

    frozen_epochs: int = 0
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.frozen_epochs < 0:
            raise ValueError(f"frozen_epochs must be >= 0, got {self.frozen_epochs}")
        if not self.lr_scale > 0:
            raise ValueError(f"lr_scale must be > 0 (frozen_epochs keeps the CNN fixed), got "
                             f"{self.lr_scale}")


class SleepStagerMethod(StatelessMethod):
    """The stager's supervised recipe for :func:`~contrastive_signals.training.fit.fit`;
    ``fine_tuning`` applies to the ``pretrained`` modules (the epoch CNN, and the frame
    context network when one was pretrained: what
    :func:`~contrastive_signals.models.sleep.load_encoder_features` loaded)."""

    name = "sleep_stager"
    requires = Requirements(modalities=("epochs",), outputs=("epoch_logits",), needs_labels=True)

    def __init__(self, params: SleepStagerParams, fine_tuning: EncoderFineTuning | None = None,
                 pretrained: Sequence[nn.Module] = ()) -> None:
        self.params = params
        self.fine_tuning = fine_tuning or EncoderFineTuning()
        self.pretrained = list(pretrained)

    def build(self, encoder: SleepStager) -> SleepStager:
        """The stager carries its own heads; its pretrained modules start frozen when
        ``fine_tuning.frozen_epochs`` > 0."""
        for module in self.pretrained:
            module.requires_grad_(self.fine_tuning.frozen_epochs == 0)
        return encoder

    def param_groups(self, model: SleepStager) -> list[dict[str, Any]] | None:
        """The pretrained modules in a group of their own at ``lr_scale`` (None: one group)."""
        if self.fine_tuning.lr_scale == 1.0 or not self.pretrained:
            return None
        pretrained = [p for module in self.pretrained for p in module.parameters()]
        ids = {id(p) for p in pretrained}
        return [{"params": [p for p in model.parameters() if id(p) not in ids]},
                {"params": pretrained, "lr_scale": self.fine_tuning.lr_scale}]

    def on_epoch_end(self, model: SleepStager, epoch: int) -> dict[str, float]:
        """Unfreeze the pretrained modules after ``frozen_epochs`` epochs."""
        if epoch + 1 == self.fine_tuning.frozen_epochs:
            for module in self.pretrained:
                module.requires_grad_(True)
        return {}

    def batches(self, recordings: list[dict[str, Any]]) -> BatchesFn:
        """Each epoch covers every recording (each at least ``window`` epochs long) with
        non-overlapping windows from a random offset, so window boundaries move between
        epochs; batches ``(windows [B, W, C, L], labels [B, W])`` in a random order."""
        window, batch_size = self.params.window, self.params.batch_size
        x = torch.cat([r["epochs"] for r in recordings])          # [N, C, L]
        y = torch.cat([r["labels"] for r in recordings])          # [N]
        bounds = np.cumsum([0] + [len(r["labels"]) for r in recordings])
        steps = torch.arange(window)

        def batches(epoch: int, generator: torch.Generator):
            starts = []
            for first, stop in zip(bounds[:-1], bounds[1:], strict=True):
                offset = int(torch.randint(window, (1,), generator=generator))
                starts += [first + s for s in window_starts(int(stop - first), window=window,
                                                            stride=window, offset=offset)]
            order = torch.tensor(starts)[torch.randperm(len(starts), generator=generator)]
            for i in range(0, len(order), batch_size):
                index = order[i:i + batch_size, None] + steps   # [B, W]
                yield x[index], y[index]

        return batches

    def loss(self, model: SleepStager, batch: tuple[torch.Tensor, torch.Tensor],
             generator: torch.Generator) -> torch.Tensor:
        windows, labels = batch
        epoch_logits, ctc_logits = stager_forward(model, windows)
        return joint_loss(epoch_logits, ctc_logits, labels, ce_weight=self.params.ce_weight,
                          ctc_weight=self.params.ctc_weight,
                          label_smoothing=self.params.label_smoothing)


def stager_forward(model: nn.Module, windows: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(windows)`` (``[B, W, C, L]`` -> ``([B, W, K], [B, W, K + 1])``); under data
    parallelism each rank runs its shard and the outputs are gathered, except for a batch that
    does not split into equal shards (an epoch's partial last batch), which every rank runs
    whole (the same gradient everywhere, so still correct)."""
    ranks = current_ranks()
    if ranks is not None and windows.shape[0] % ranks.world_size:
        return model(windows)
    return local_forward(model, windows)


def stager_validation(recordings: list[dict[str, Any]], *, window: int, stride: int) -> ValidateFn:
    """fit's ``validate``: ``val_loss`` (NLL), ``val_acc`` and ``val_kappa`` of per-epoch
    predictions on ``recordings``."""
    labels = torch.cat([r["labels"] for r in recordings])

    def validate(model: SleepStager) -> dict[str, float]:
        device = next(model.parameters()).device
        probs = torch.cat([predict_recording(model, r["epochs"], window=window, stride=stride,
                                             device=device)[0] for r in recordings])
        predicted = probs.argmax(1)
        return {"val_loss": F.nll_loss(probs.clamp_min(1e-8).log(), labels).item(),
                "val_acc": (predicted == labels).float().mean().item(),
                "val_kappa": float(cohen_kappa_score(labels.numpy(), predicted.numpy()))}

    return validate


def train_sleep_stager(train_recordings: list[dict[str, Any]],
                       val_recordings: list[dict[str, Any]], *, stages: list[str],
                       params: SleepStagerParams, encoder: nn.Module | None = None,
                       fine_tuning: EncoderFineTuning | None = None,
                       name: str = "sleep", path: str = "sleep.training"
                       ) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Train a stager on the training recordings (those shorter than ``window`` are left out),
    monitored on the validation recordings (if any); the epoch CNN starts from ``encoder``'s
    weights when given (an ``epoch_feature_layers`` module, e.g. wav2vec's feature encoder)
    and is then fine-tuned as ``fine_tuning`` says (ignored without ``encoder``).

    Returns:
        the model bundle (with the training ``window`` and ``stages``) and its history.
    """
    train = [r for r in train_recordings if len(r["labels"]) >= params.window]
    if not train:
        raise ValueError(f"no training recording holds {params.window} epochs ({path}.window)")
    seed_everything(params.fit.seed)  # dropout and the LSTM draw from torch's global stream
    config = {"in_channels": int(train[0]["epochs"].shape[1]), "num_stages": len(stages),
              **asdict(params.model)}
    model = build_model("sleep_stager", config, seed=params.fit.seed)
    pretrained = load_encoder_features(model, encoder) if encoder is not None else []
    method = SleepStagerMethod(params, fine_tuning if encoder is not None else None, pretrained)
    batches = method.batches(train)
    model = method.build(model)
    validate = (stager_validation(val_recordings, window=params.window, stride=params.val_stride)
                if val_recordings else None)
    groups = method.param_groups(model)
    with torch_threads(params.num_threads):
        result = fit(model, loss_fn=method.loss, batches=batches, validate=validate,
                     config=replace(params.fit, name=name), parameters=groups, hooks=method)
    bundle = {**to_bundle(method.export(result.model), "sleep_stager", config),
              "window": params.window, "stages": list(stages)}
    return bundle, result.history


def _decode(log_probs: torch.Tensor, params: SleepEvaluationParams) -> list[int]:
    """Stage indices decoded from one window's CTC log-probabilities ``[T, K + 1]``."""
    if params.decoder == "greedy":
        symbols = greedy_decode(log_probs.unsqueeze(1), blank=BLANK)[0]
    else:
        symbols = beam_search_decode(log_probs.unsqueeze(1), beam_width=params.beam_width,
                                     blank=BLANK)[0]
    return [symbol - 1 for symbol in symbols]


def stage_recordings(model: SleepStager, recordings: list[dict[str, Any]], *, window: int,
                     params: SleepEvaluationParams) -> list[dict[str, Any]]:
    """Per-epoch stages (classifier head, overlapping windows averaged) and per-window CTC
    decodings of every recording.

    Returns:
        per recording ``{"name", "subject", "true", "predicted", "epoch_index",
        "window_references", "window_hypotheses"}``: ``true``/``predicted`` ``[E]`` stage
        indices; the window lists hold stage-index sequences of consecutive, non-overlapping
        ``window``-epoch stretches (collapsed truth vs CTC decoding).
    """
    out = []
    for recording in recordings:
        with torch_threads(params.num_threads):
            probs, ctc_log_probs = predict_recording(model, recording["epochs"], window=window,
                                                     stride=params.stride,
                                                     batch_size=params.batch_size)
        labels = recording["labels"]
        out.append({
            "name": recording["name"], "subject": recording["subject"],
            "true": labels.clone(), "predicted": probs.argmax(1),
            "epoch_index": recording["epoch_index"].clone(),
            "window_references": [collapse_repeats(labels[s:s + window])
                                  for s in range(0, len(labels), window)],
            "window_hypotheses": [_decode(lp, params) for lp in ctc_log_probs],
        })
    return out
