"""Sequence labellers for CTC: signals ``[B, C, L]`` -> per-frame log-probabilities
``[T', B, K + 1]`` over K classes plus the blank (index 0), the layout ``nn.CTCLoss`` takes.

Both models shorten time by ``downsample`` before the output layer (``T' = ceil(L /
downsample)``): with one output frame per input sample, CTC tends to sit on the all-blank
plateau for a long time, and a coarser frame rate both cures that and makes the recurrent
part cheaper.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _check(name: str, value: int, minimum: int = 1) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _halvings(downsample: int, *, most: int) -> int:
    """log2 of ``downsample``, which must be a power of two with at most ``most`` halvings."""
    halvings = int(math.log2(downsample)) if downsample >= 1 else -1
    if downsample < 1 or 2 ** halvings != downsample or halvings > most:
        raise ValueError(f"downsample must be a power of two from 1 to {2 ** most}, got {downsample}")
    return halvings


def he_init(module: nn.Module) -> None:
    """He (kaiming) normal initialisation of linear and convolution weights, zero biases
    (``module.apply(he_init)``); the layers feed ReLUs or a softmax."""
    if isinstance(module, nn.Linear | nn.Conv1d):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class SequenceCNN(nn.Module):
    """A 4-layer 1-D CNN: ``num_layers`` blocks of conv (same padding) -> BatchNorm -> ReLU,
    the first ``log2(downsample)`` of them followed by 2x max-pooling, then a per-frame
    linear layer to ``num_classes + 1`` symbols.

    Args:
        in_channels: signal channels.
        num_classes: K, classes without the blank.
        channels: width of every convolution.
        kernel_size: odd convolution length.
        downsample: time reduction, a power of two up to ``2 ** num_layers``.
        num_layers: convolution blocks.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 3, channels: int = 32,
                 kernel_size: int = 7, downsample: int = 8, num_layers: int = 4):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("channels", channels), ("num_layers", num_layers)):
            _check(name, value)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        pools = _halvings(downsample, most=num_layers)
        layers: list[nn.Module] = []
        for index in range(num_layers):
            layers += [nn.Conv1d(in_channels if index == 0 else channels, channels, kernel_size,
                                 padding=kernel_size // 2),
                       nn.BatchNorm1d(channels), nn.ReLU(inplace=True)]
            if index < pools:
                layers.append(nn.MaxPool1d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes + 1)
        self.downsample = downsample
        self.apply(he_init)

    def output_length(self, input_length: int) -> int:
        """``T'`` for an input of ``input_length`` samples."""
        return math.ceil(input_length / self.downsample)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> log-probabilities ``[T', B, num_classes + 1]``."""
        frames = self.features(signals).permute(2, 0, 1)  # [T', B, channels]
        return self.classifier(frames).log_softmax(-1)


class ConvBiLSTM(nn.Module):
    """Strided-convolution front end -> one bidirectional LSTM layer (as in Graves et al.,
    2006) -> per-frame linear layer to ``num_classes + 1`` symbols.

    The front end is ``log2(downsample)`` blocks of conv (stride 2) -> BatchNorm -> ReLU, so
    the LSTM runs over ``ceil(L / downsample)`` frames of ``channels`` features.

    Args:
        in_channels: signal channels.
        num_classes: K, classes without the blank.
        channels: width of the convolutions (the LSTM's input size).
        kernel_size: odd convolution length.
        downsample: time reduction, a power of two from 2 to 64.
        hidden_size: LSTM units per direction.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 3, channels: int = 32,
                 kernel_size: int = 7, downsample: int = 8, hidden_size: int = 64):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("channels", channels), ("hidden_size", hidden_size)):
            _check(name, value)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        strides = _halvings(downsample, most=6)
        if strides < 1:
            raise ValueError(f"downsample must be >= 2 (a strided front end), got {downsample}")
        layers: list[nn.Module] = []
        for index in range(strides):
            layers += [nn.Conv1d(in_channels if index == 0 else channels, channels, kernel_size,
                                 stride=2, padding=kernel_size // 2),
                       nn.BatchNorm1d(channels), nn.ReLU(inplace=True)]
        self.front_end = nn.Sequential(*layers)
        self.lstm = nn.LSTM(channels, hidden_size, num_layers=1, bidirectional=True)
        self.classifier = nn.Linear(2 * hidden_size, num_classes + 1)
        self.downsample = downsample
        self.apply(he_init)
        # Forget-gate biases at 1 (gate order i, f, g, o): remember by default early on.
        for name, parameter in self.lstm.named_parameters():
            if name.startswith("bias_ih"):
                with torch.no_grad():
                    parameter[hidden_size:2 * hidden_size].fill_(1.0)

    def output_length(self, input_length: int) -> int:
        """``T'`` for an input of ``input_length`` samples."""
        return math.ceil(input_length / self.downsample)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> log-probabilities ``[T', B, num_classes + 1]``."""
        frames = self.front_end(signals).permute(2, 0, 1)  # [T', B, channels]
        outputs, _ = self.lstm(frames)
        return self.classifier(outputs).log_softmax(-1)


@torch.no_grad()
def sequence_log_probs(model: nn.Module, signals: torch.Tensor, *, batch_size: int = 256
                       ) -> torch.Tensor:
    """Per-frame log-probabilities ``[T', N, K + 1]`` (CPU, float32) of ``signals``
    ``[N, C, L]``, computed in eval mode in batches on the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = [model(signals[i:i + batch_size].to(device)).float().cpu()
               for i in range(0, len(signals), batch_size)]
    model.train(was_training)
    return torch.cat(outputs, dim=1)
