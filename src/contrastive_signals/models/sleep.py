"""Sleep staging over sequences of 30-s epochs: a 1-D CNN encodes each epoch, a BiLSTM reads
a window of consecutive epochs, and two heads read the BiLSTM:

- a per-epoch classifier (stage logits, trained with cross-entropy);
- a CTC head (blank + stage logits per epoch), trained with CTC on the window's collapsed
  stage sequence (``W W N1 N2 N2`` -> ``W N1 N2``), i.e. the order of stages without their
  durations.

Also here: window construction, the joint loss and inference over whole recordings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from contrastive_signals.losses.ctc import full_length_ctc_loss
from contrastive_signals.models.wav2vec import ContextualFrameEncoder, FrameContext

BLANK = 0  # CTC blank; stage k is CTC symbol k + 1
BLANK_BIAS_INIT = -3.0


def epoch_feature_layers(in_channels: int, *, base_channels: int = 16, dropout: float = 0.2,
                         channel_wise_stem: bool = False) -> nn.Sequential:
    """The convolutional part of :class:`EpochEncoder`: ``[N, C, L]`` -> frames
    ``[N, 2 * base_channels, ~L / 192]`` (15 frames of a 30-s epoch at 100 Hz). Also the
    feature encoder of the wav2vec pretraining (:mod:`contrastive_signals.models.wav2vec`), so
    its weights load into ``EpochEncoder.features``.

    ``channel_wise_stem``: the first convolution filters each input channel on its own
    (``ceil(base_channels / C)`` filters per channel, a grouped convolution) and its batch norm
    scales each filter, so no channel can be weighted down before the layers that mix them (an
    objective that finds a channel hard to predict, such as the EOG's eye movements at random
    times for wav2vec, otherwise fades it out of the mixed first layer).
    """
    c1, c2 = base_channels, 2 * base_channels
    groups = 1
    if channel_wise_stem:
        c1, groups = -(-base_channels // in_channels) * in_channels, in_channels
    return nn.Sequential(
        nn.Conv1d(in_channels, c1, kernel_size=50, stride=6, padding=24, bias=False, groups=groups),
        nn.BatchNorm1d(c1), nn.ReLU(inplace=True), nn.MaxPool1d(8), nn.Dropout(dropout),
        nn.Conv1d(c1, c2, kernel_size=8, padding=4, bias=False),
        nn.BatchNorm1d(c2), nn.ReLU(inplace=True),
        nn.Conv1d(c2, c2, kernel_size=8, padding=4, bias=False),
        nn.BatchNorm1d(c2), nn.ReLU(inplace=True), nn.MaxPool1d(4),
    )


def contextual_epoch_frames(in_channels: int, *, base_channels: int = 16, dropout: float = 0.0,
                            channel_wise_stem: bool = False, frame_context: dict | None = None
                            ) -> ContextualFrameEncoder:
    """The epoch CNN (:func:`epoch_feature_layers`) read by wav2vec's context network:
    ``[N, C, L]`` -> ``[N, model_dim, T]`` (registry entry ``sleep_cnn_context``). What a
    wav2vec pretraining exports when the stager fine-tunes the context network too; its
    ``features`` and ``context`` load into :class:`EpochEncoder`'s."""
    features = epoch_feature_layers(in_channels, base_channels=base_channels, dropout=dropout,
                                    channel_wise_stem=channel_wise_stem)
    return ContextualFrameEncoder(features, FrameContext(2 * base_channels,
                                                         **(frame_context or {})))


class EpochEncoder(nn.Module):
    """1-D CNN on raw epochs ``[N, C, L]`` -> embeddings ``[N, D]``.

    A wide first kernel (0.5 s at 100 Hz) with stride 6 sees the slow waves cheaply; two
    narrow convolutions then pick up rhythms; average and max pooling over time make the
    embedding independent of where in the epoch an event (spindle, K-complex) falls.

    ``frame_context`` (the keyword arguments of :class:`FrameContext`, or None): wav2vec's
    context network reads the CNN's frames ``[N, T, 2 * base_channels]`` before the pooling, so
    a wav2vec pretraining can hand over its context network as well as its CNN.
    """

    def __init__(self, in_channels: int, *, base_channels: int = 16, embedding_dim: int = 64,
                 dropout: float = 0.2, channel_wise_stem: bool = False,
                 frame_context: dict | None = None) -> None:
        super().__init__()
        width = 2 * base_channels
        self.features = epoch_feature_layers(in_channels, base_channels=base_channels,
                                             dropout=dropout, channel_wise_stem=channel_wise_stem)
        self.context = None
        if frame_context is not None:
            self.context = FrameContext(width, **frame_context)
            width = self.context.model_dim
        self.project = nn.Sequential(nn.Linear(2 * width, embedding_dim), nn.ReLU(inplace=True))
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each epoch on its own: ``[N, C, L]`` -> ``[N, D]``."""
        return self.encode_windows(x.unsqueeze(1)).squeeze(1)

    def encode_windows(self, x: torch.Tensor, *, context_epochs: int = 1) -> torch.Tensor:
        """Windows of consecutive epochs ``[B, T, C, L]`` -> ``[B, T, D]``. The context network
        (if any) reads runs of ``context_epochs`` consecutive epochs of each window as one
        sequence of frames (the last run shorter when ``context_epochs`` does not divide T)."""
        batch, steps = x.shape[:2]
        h = self.features(x.flatten(0, 1))                     # [B * T, F, f]
        if self.context is not None:
            frames = h.transpose(1, 2).unflatten(0, (batch, steps))      # [B, T, f, F]
            h = torch.cat([self._contextualise(part, context_epochs)
                           for part in _runs_and_rest(frames, context_epochs)], dim=1)
            h = h.flatten(0, 1).transpose(1, 2)                # [B * T, D, f]
        pooled = self.project(torch.cat([h.mean(-1), h.amax(-1)], dim=1))
        return pooled.unflatten(0, (batch, steps))

    def _contextualise(self, frames: torch.Tensor, run: int) -> torch.Tensor:
        """``[B, T, f, F]`` -> ``[B, T, f, D]``, one sequence per run of ``run`` epochs (``run``
        divides T, or is at least T: then all T epochs are one run)."""
        batch, steps, per_epoch = frames.shape[:3]
        run = min(run, steps)
        runs = frames.reshape(batch * steps // run, run * per_epoch, frames.shape[-1])
        return self.context(runs).reshape(batch, steps, per_epoch, -1)


def _runs_and_rest(frames: torch.Tensor, run: int) -> list[torch.Tensor]:
    """``frames`` ``[B, T, ...]`` split along T into the part that whole runs of ``run`` epochs
    cover and the shorter rest (a run of its own); empty parts left out."""
    run = min(run, frames.shape[1])
    full = frames.shape[1] - frames.shape[1] % run
    return [part for part in (frames[:, :full], frames[:, full:]) if part.shape[1]]


class SleepStager(nn.Module):
    """Epoch encoder + BiLSTM + per-epoch and CTC heads.

    ``forward(x)`` with ``x`` ``[B, T, C, L]`` (T consecutive epochs) returns
    ``(epoch_logits [B, T, K], ctc_logits [B, T, K + 1])`` with K stages; CTC symbol 0 is the
    blank. With ``frame_context`` (see :class:`EpochEncoder`), its context network reads the
    frames of ``context_epochs`` consecutive epochs as one sequence (1: each epoch alone; as
    wav2vec's pretraining read ``segment_epochs``).
    """

    def __init__(self, in_channels: int, *, num_stages: int = 5, base_channels: int = 16,
                 embedding_dim: int = 64, hidden_dim: int = 64, lstm_layers: int = 1,
                 dropout: float = 0.2, channel_wise_stem: bool = False,
                 frame_context: dict | None = None, context_epochs: int = 1) -> None:
        super().__init__()
        if context_epochs < 1:
            raise ValueError(f"context_epochs must be >= 1, got {context_epochs}")
        self.context_epochs = context_epochs
        self.encoder = EpochEncoder(in_channels, base_channels=base_channels,
                                    embedding_dim=embedding_dim, dropout=dropout,
                                    channel_wise_stem=channel_wise_stem,
                                    frame_context=frame_context)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, num_layers=lstm_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if lstm_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        # The classifier also sees the epoch's own embedding (a residual path, as in
        # DeepSleepNet), so the BiLSTM only needs to add context.
        self.classifier = nn.Linear(2 * hidden_dim + embedding_dim, num_stages)
        self.ctc_head = nn.Linear(2 * hidden_dim, num_stages + 1)
        # Collapsed targets have no adjacent repeats, so emitting the stage at every frame is
        # a valid CTC path. Starting the blank unlikely (bias -3) sets off from that path
        # instead of CTC's usual all-blank plateau, which short trainings do not leave.
        with torch.no_grad():
            self.ctc_head.bias[BLANK] = BLANK_BIAS_INIT
        self.num_stages = num_stages

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder.encode_windows(x, context_epochs=self.context_epochs)  # [B, T, D]
        h, _ = self.lstm(z)
        h = self.dropout(h)
        return self.classifier(torch.cat([h, z], dim=-1)), self.ctc_head(h)


# ------------------------------------------------------------------------ windows


def collapse_repeats(labels: Sequence[int] | torch.Tensor | np.ndarray) -> list[int]:
    """``[0, 0, 1, 2, 2, 0]`` -> ``[0, 1, 2, 0]``: the stage sequence without durations."""
    values = [int(v) for v in labels]
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def window_starts(n_epochs: int, *, window: int, stride: int, offset: int = 0) -> list[int]:
    """Starts of windows of ``window`` epochs every ``stride`` epochs from ``offset``; the last
    window is aligned to the end so every epoch from ``offset`` on is covered. A recording
    shorter than ``window`` gives one window at 0 (the caller shortens it)."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    if n_epochs <= window:
        return [0]
    last = n_epochs - window
    starts = list(range(min(offset, last), last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def joint_loss(epoch_logits: torch.Tensor, ctc_logits: torch.Tensor, labels: torch.Tensor, *,
               ce_weight: float, ctc_weight: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """``ce_weight * CE(epoch_logits, labels) + ctc_weight * CTC(ctc_logits, collapsed labels)``.

    Args:
        epoch_logits: ``[B, T, K]``; ctc_logits: ``[B, T, K + 1]``; labels: ``[B, T]`` in 0..K-1.

    The CTC targets are each window's collapsed stage sequence (never longer than T, and
    without adjacent repeats, so T frames always suffice); CTC is averaged over targets
    after dividing by their lengths (``reduction="mean"``).
    """
    loss = ce_weight * F.cross_entropy(epoch_logits.flatten(0, 1).float(), labels.flatten(),
                                       label_smoothing=label_smoothing)
    if ctc_weight > 0:
        targets = [torch.unique_consecutive(row) + 1 for row in labels]
        lengths = torch.tensor([len(t) for t in targets])
        log_probs = F.log_softmax(ctc_logits.float(), dim=-1).transpose(0, 1)  # [T, B, K + 1]
        loss = loss + ctc_weight * full_length_ctc_loss(log_probs, torch.cat(targets), lengths,
                                                        blank=BLANK)
    return loss


# ---------------------------------------------------------------------- inference


@torch.no_grad()
def predict_recording(model: SleepStager, epochs: torch.Tensor, *, window: int, stride: int,
                      batch_size: int = 16, device: torch.device | str = "cpu",
                      ctc: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Stage probabilities of every epoch of one recording and CTC outputs per window.

    Per-epoch probabilities average the softmax of every window (``window`` epochs every
    ``stride``) that covers the epoch, so each epoch sees context on both sides. CTC outputs
    come from consecutive non-overlapping windows (the last one shorter), each a stretch of
    the recording whose collapsed stage sequence the CTC head reads.

    Args:
        epochs: ``[N, C, L]`` one recording's epochs in time order.
        ctc: False skips the CTC pass (the list comes back empty): the probabilities alone,
            about a quarter less work (inference).

    Returns:
        probabilities ``[N, K]`` and, per non-overlapping window, CTC log-probabilities
        ``[T_w, K + 1]`` (``T_w = window`` except possibly the last).
    """
    was_training = model.training
    model.eval().to(device)
    n = len(epochs)
    length = min(window, n)
    sums = torch.zeros(n, model.num_stages)
    counts = torch.zeros(n, 1)
    starts = window_starts(n, window=length, stride=stride)
    for i in range(0, len(starts), batch_size):
        chunk = starts[i:i + batch_size]
        x = torch.stack([epochs[s:s + length] for s in chunk]).to(device)
        logits, _ = model(x)
        probs = logits.float().softmax(-1).cpu()
        for s, p in zip(chunk, probs, strict=True):
            sums[s:s + length] += p
            counts[s:s + length] += 1
    ctc_outputs: list[torch.Tensor] = []
    full = list(range(0, n - window + 1, window)) if n >= window and ctc else []
    pieces = [full[i:i + batch_size] for i in range(0, len(full), batch_size)]
    tail = len(full) * window
    for chunk in pieces + ([[tail]] if tail < n and ctc else []):
        x = torch.stack([epochs[s:s + window] for s in chunk]).to(device)
        _, ctc_logits = model(x)
        ctc_outputs += list(F.log_softmax(ctc_logits.float(), dim=-1).cpu())
    model.train(was_training)
    return sums / counts, ctc_outputs


# ------------------------------------------------------------------ initialisation


def load_encoder_features(model: SleepStager, pretrained: nn.Module) -> list[nn.Module]:
    """Initialise the stager's epoch CNN (``model.encoder.features``, see
    :func:`epoch_feature_layers`) from a pretrained frame encoder, e.g. a wav2vec feature
    encoder, and, when ``pretrained`` is a :class:`ContextualFrameEncoder`, its context network
    (``model.encoder.context``) too; the rest stays as built.

    Returns:
        the stager's modules that now hold pretrained weights.

    Raises:
        ValueError: when the weights do not fit the stager (missing, unexpected or differently
            shaped weights, naming them), or a pretrained context network meets a stager
            without one (``frame_context``).
    """
    pairs = [(model.encoder.features, pretrained)]
    if isinstance(pretrained, ContextualFrameEncoder):
        if model.encoder.context is None:
            raise ValueError("the pretrained encoder has a context network but the sleep stager "
                             "has none: set the stager's model.frame_context to the pretraining's "
                             "context network")
        pairs = [(model.encoder.features, pretrained.features),
                 (model.encoder.context, pretrained.context)]
    for target, source in pairs:
        _check_fits(target.state_dict(), source.state_dict())
    for target, source in pairs:
        target.load_state_dict(source.state_dict())
    return [target for target, _ in pairs]


def _check_fits(target: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    shapes = sorted(k for k in set(target) & set(state) if target[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(f"pretrained encoder weights do not fit the sleep stager's epoch CNN "
                         f"(or context network): missing {missing}, unexpected {unexpected}, "
                         f"other shapes {shapes} (base_channels, the input channels and "
                         "frame_context must match)")
