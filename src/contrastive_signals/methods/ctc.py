"""CTC sequence labelling as a supervised method: a registered ``frame_logits`` model
(``ctc_cnn``, ``ctc_bilstm``: ``[B, C, L]`` -> log-probabilities ``[T', B, K + 1]``, blank 0)
trained with the CTC loss on freshly generated segment sequences, validated and tested by the
character error rate of its decodings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from contrastive_signals.config import require_at_least
from contrastive_signals.data.segment_sequences import (
    SegmentSequenceSpec,
    make_segment_sequences,
    target_sequences,
)
from contrastive_signals.losses.ctc import full_length_ctc_loss
from contrastive_signals.methods.base import Requirements, StatelessMethod
from contrastive_signals.metrics.cer import corpus_edit_counts
from contrastive_signals.metrics.ctc_decoding import beam_search_decode, greedy_decode
from contrastive_signals.models.registry import build_model, to_bundle
from contrastive_signals.models.sequence import sequence_log_probs
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import BatchesFn, FitConfig, ValidateFn, fit
from contrastive_signals.training.ranks import local_forward

SEQUENCE_ARCHITECTURES = ("ctc_cnn", "ctc_bilstm")


@dataclass(frozen=True)
class SequenceModelParams:
    """Which sequence labeller to build; ``num_layers`` is the CNN's, ``hidden_size`` the
    BiLSTM's (LSTM units per direction)."""

    architecture: str = "ctc_cnn"
    channels: int = 32
    kernel_size: int = 9
    downsample: int = 8
    num_layers: int = 4
    hidden_size: int = 64

    def __post_init__(self) -> None:
        if self.architecture not in SEQUENCE_ARCHITECTURES:
            raise ValueError(f"architecture must be one of {SEQUENCE_ARCHITECTURES}, got "
                             f"'{self.architecture}'")
        # Building the (small) model checks channels, kernel and downsampling; build_model
        # leaves the global random state alone.
        build_model(self.architecture, self.model_config(in_channels=1, num_classes=2), seed=0)

    def model_config(self, *, in_channels: int, num_classes: int) -> dict[str, Any]:
        config = {"in_channels": in_channels, "num_classes": num_classes,
                  "channels": self.channels, "kernel_size": self.kernel_size,
                  "downsample": self.downsample}
        if self.architecture == "ctc_cnn":
            config["num_layers"] = self.num_layers
        else:
            config["hidden_size"] = self.hidden_size
        return config

    def check_frames(self, spec: SegmentSequenceSpec, *, name: str) -> None:
        """CTC needs an output frame per label: the model's frames must hold the most
        segments a sequence of ``spec`` can have (``name`` names this block in the error)."""
        frames = -(-spec.length // self.downsample)
        if frames < spec.max_segments:
            raise ValueError(
                f"{name}.downsample={self.downsample} leaves {frames} output frames for up to "
                f"{spec.max_segments} segments (data.sequence_length / data.min_segment); CTC "
                "needs at least one frame per label")


@dataclass(frozen=True)
class CTCTrainParams:
    """One model's settings; an "epoch" is ``steps_per_epoch`` freshly generated batches.
    ``num_threads``: CPU threads while training (None: as the run set them)."""

    model: SequenceModelParams = field(default_factory=SequenceModelParams)
    batch_size: int = 32
    steps_per_epoch: int = 50
    num_threads: int | None = None
    fit: FitConfig = field(default_factory=lambda: FitConfig(
        epochs=1, learning_rate=3e-3, monitor="val_cer"))

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")
        if self.fit.monitor not in ("val_cer", "val_loss"):
            raise ValueError(f"fit.monitor must be 'val_cer' or 'val_loss', got '{self.fit.monitor}'")


@dataclass(frozen=True)
class DecodingParams:
    beam_width: int = 8  # prefix beam search

    def __post_init__(self) -> None:
        require_at_least(self, ("beam_width",), 1)


class CTCMethod(StatelessMethod):
    """CTC on segment sequences of ``spec`` for :func:`~contrastive_signals.training.fit.fit`."""

    name = "ctc"
    requires = Requirements(modalities=("signal",), outputs=("frame_logits",), needs_labels=True)

    def __init__(self, params: CTCTrainParams, spec: SegmentSequenceSpec) -> None:
        self.params = params
        self.spec = spec

    def build(self, encoder: nn.Module) -> nn.Module:
        """The sequence labeller carries its own output layer."""
        return encoder

    def batches(self) -> BatchesFn:
        """``steps_per_epoch`` fresh batches ``(signals [B, 1, L], targets [B, S],
        target_lengths [B])`` per epoch, drawn from fit's generator."""
        def batches(epoch: int, generator: torch.Generator):
            for _ in range(self.params.steps_per_epoch):
                batch = make_segment_sequences(self.params.batch_size, spec=self.spec,
                                               generator=generator)
                yield batch["signals"], batch["targets"], batch["target_lengths"]

        return batches

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...],
             generator: torch.Generator) -> torch.Tensor:
        signals, targets, target_lengths = batch
        # the model's log-probabilities are time-first [T, B, K + 1]: batch-first while
        # each data-parallel rank encodes its shard and the shards are gathered
        log_probs = local_forward(lambda s: model(s).transpose(0, 1), signals).transpose(0, 1)
        return full_length_ctc_loss(log_probs, targets, target_lengths)


def greedy_cer_validation(data: dict[str, torch.Tensor]) -> ValidateFn:
    """fit's ``validate``: ``val_loss`` (CTC) and ``val_cer`` (greedy decoding) on a fixed set
    (``make_segment_sequences``' dict)."""
    references = target_sequences(data["targets"], data["target_lengths"])

    def validate(model: nn.Module) -> dict[str, float]:
        log_probs = sequence_log_probs(model, data["signals"])
        loss = full_length_ctc_loss(log_probs, data["targets"], data["target_lengths"]).item()
        return {"val_loss": loss,
                "val_cer": corpus_edit_counts(references, greedy_decode(log_probs)).cer}

    return validate


def train_sequence_labeller(params: CTCTrainParams, spec: SegmentSequenceSpec,
                    val: dict[str, torch.Tensor], *, name: str
                    ) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """One sequence labeller trained on fresh batches of ``spec`` sequences (from fit's seeded
    generator), validated on the fixed set ``val``; returns its bundle and history."""
    method = CTCMethod(params, spec)
    seed_everything(params.fit.seed)
    config = params.model.model_config(in_channels=1, num_classes=spec.num_classes)
    model = method.build(build_model(params.model.architecture, config, seed=params.fit.seed))
    with torch_threads(params.num_threads):
        result = fit(model, loss_fn=method.loss, batches=method.batches(), hooks=method,
                     config=replace(params.fit, name=name), validate=greedy_cer_validation(val))
    return to_bundle(method.export(result.model), params.model.architecture, config), result.history


def ctc_test_scores(model: nn.Module, test: dict[str, torch.Tensor], *, beam_width: int
                    ) -> dict[str, float]:
    """``{"cer", "cer_beam", "substitutions", "deletions", "insertions"}`` on a fixed set:
    CERs of greedy (best path) and prefix beam search decoding; the counts are the greedy
    decoding's edits over all sequences."""
    references = target_sequences(test["targets"], test["target_lengths"])
    log_probs = sequence_log_probs(model, test["signals"])
    greedy = corpus_edit_counts(references, greedy_decode(log_probs))
    beam = corpus_edit_counts(references, beam_search_decode(log_probs, beam_width=beam_width))
    return {"cer": greedy.cer, "cer_beam": beam.cer, "substitutions": greedy.substitutions,
            "deletions": greedy.deletions, "insertions": greedy.insertions}


def frame_posteriors(model: nn.Module, signals: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Output probabilities ``[T', K + 1]`` and the greedy decoding of one sequence
    ``signals`` ``[1, C, L]``."""
    log_probs = sequence_log_probs(model, signals)
    return log_probs[:, 0].exp(), greedy_decode(log_probs)[0]
