"""The one registry of every architecture, and the one bundle format that stores them.

Each :class:`EncoderEntry` declares what the model reads (its *modality*), what it returns
(its *output*) and how wide its embedding is, so that a method can check that an encoder fits
it before any training starts, and every method can use every encoder of a modality it fits.

Modalities (input layouts):

- ``image``: ``[B, C, H, W]``;
- ``series``: ``[B, T, C]`` with a validity mask ``[B, T]`` (UCR/UEA, MNIST-1D);
- ``signal``: ``[B, C, L]`` raw signals (AFM force curves, EEG, CTC sequences);
- ``epochs``: ``[B, W, C, L]`` windows of W signal epochs (sleep staging).

Outputs: ``instance`` (``embed`` gives ``[B, D]``), ``per_step`` (``[B, T, D]``, max-pooled over
valid steps for an instance embedding), ``frames`` (downsampled frames ``[B, D, T']``),
``frame_logits`` (CTC), ``epoch_logits`` (sleep), ``split_latent`` (the HVAE) and ``image``
(the U-Net).

A *bundle* is what the catalog stores: ``{"architecture": str, "config": dict,
"state_dict": dict}``. It holds only tensors and primitives, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from contrastive_signals.config import type_problem
from contrastive_signals.models.curves import CurveCNN
from contrastive_signals.models.encoders import DigitCNN, SupervisedCNN, TripletMLP
from contrastive_signals.models.hvae import HierarchicalVAE
from contrastive_signals.models.patch_transformer import PatchTransformerEncoder
from contrastive_signals.models.sequence import ConvBiLSTM, SequenceCNN
from contrastive_signals.models.sleep import (
    SleepStager,
    contextual_epoch_frames,
    epoch_feature_layers,
)
from contrastive_signals.models.ts_encoders import (
    CNN1dEncoder,
    DilatedConvEncoder,
    RecurrentTSEncoder,
    TransformerTSEncoder,
)
from contrastive_signals.models.unet import ResidualUNet
from contrastive_signals.models.vit import VisionTransformer
from contrastive_signals.models.wav2vec import DEFAULT_CONV_LAYERS, ConvFeatureEncoder

MODALITIES = ("image", "series", "signal", "epochs")
OUTPUTS = ("instance", "per_step", "frames", "frame_logits", "epoch_logits", "split_latent",
           "image")


def _config_value(key: str, default: int) -> Callable[[dict[str, Any]], int]:
    return lambda config: int(config.get(key, default))


@dataclass(frozen=True)
class EncoderEntry:
    """One registered architecture.

    Attributes:
        name: the ``architecture`` named in parameters and bundles.
        modality: the input layout it reads (see the module docstring).
        output: what it returns (see the module docstring).
        factory: ``(**config) -> nn.Module``.
        embedding_dim: ``config -> D``, the width of its embedding (for heads and probes).
        summary: one line for error messages and the docs.
        classifier: the model takes ``num_classes`` and its ``forward`` then returns class
            logits (``embed`` the embedding), so supervised training needs no extra head.
    """

    name: str
    modality: str
    output: str
    factory: Callable[..., nn.Module]
    embedding_dim: Callable[[dict[str, Any]], int]
    summary: str
    classifier: bool = False

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES or self.output not in OUTPUTS:
            raise ValueError(f"{self.name}: bad modality/output {self.modality}/{self.output}")


def _recurrent(cell: str) -> Callable[..., nn.Module]:
    return lambda **config: RecurrentTSEncoder(cell=cell, **config)


ENCODERS: dict[str, EncoderEntry] = {entry.name: entry for entry in (
    # images [B, C, H, W]
    EncoderEntry("digit_cnn", "image", "instance", DigitCNN, _config_value("embedding_dim", 64),
                 "classic small MNIST CNN (conv 16 -> conv 32 -> fc 128 -> fc D)"),
    EncoderEntry("triplet_mlp", "image", "instance", TripletMLP,
                 _config_value("embedding_dim", 10), "classic triplet MLP 784-256-64-D"),
    EncoderEntry("supervised_cnn", "image", "instance", SupervisedCNN,
                 lambda config: 49 * int(config.get("channels", 4)),
                 "tiny supervised CNN (embed: flattened features; forward: logits)",
                 classifier=True),
    EncoderEntry("vit", "image", "instance", VisionTransformer,
                 _config_value("embedding_dim", 64),
                 "small Vision Transformer (patches, class token, pre-norm blocks)",
                 classifier=True),
    EncoderEntry("hvae", "image", "split_latent", HierarchicalVAE,
                 lambda config: 0, "hierarchical VAE with signal/noise latents"),
    EncoderEntry("residual_unet", "image", "image", ResidualUNet, lambda config: 0,
                 "residual U-Net image-to-image denoiser"),
    # series [B, T, C] + mask [B, T]
    EncoderEntry("cnn1d", "series", "per_step", CNN1dEncoder, _config_value("output_dim", 128),
                 "plain 1-D CNN"),
    EncoderEntry("dilated_conv", "series", "per_step", DilatedConvEncoder,
                 _config_value("output_dim", 320), "TS2Vec's dilated convolutional encoder"),
    EncoderEntry("transformer", "series", "per_step", TransformerTSEncoder,
                 _config_value("output_dim", 128), "Transformer over time steps"),
    EncoderEntry("patch_transformer", "series", "per_step", PatchTransformerEncoder,
                 _config_value("output_dim", 128),
                 "PatchTST-style patch Transformer, channel-independent"),
    EncoderEntry("gru", "series", "per_step", _recurrent("gru"),
                 _config_value("output_dim", 128), "bidirectional GRU"),
    EncoderEntry("lstm", "series", "per_step", _recurrent("lstm"),
                 _config_value("output_dim", 128), "bidirectional LSTM"),
    # signals [B, C, L]
    EncoderEntry("curve_cnn", "signal", "instance", CurveCNN, _config_value("embedding_dim", 64),
                 "1-D CNN for AFM force curves (embed; forward: class logits)",
                 classifier=True),
    EncoderEntry("w2v_conv", "signal", "frames", ConvFeatureEncoder,
                 lambda config: int(config.get("layers", DEFAULT_CONV_LAYERS)[-1][0]),
                 "wav2vec 2.0's strided convolutional feature encoder"),
    EncoderEntry("sleep_cnn", "signal", "frames", epoch_feature_layers,
                 lambda config: 2 * int(config.get("base_channels", 16)),
                 "the sleep stager's epoch CNN as a frame encoder"),
    EncoderEntry("sleep_cnn_context", "signal", "frames", contextual_epoch_frames,
                 lambda config: int((config.get("frame_context") or {}).get("model_dim", 64)),
                 "the sleep stager's epoch CNN read by wav2vec's context network"),
    EncoderEntry("ctc_cnn", "signal", "frame_logits", SequenceCNN, lambda config: 0,
                 "1-D CNN emitting CTC frame logits"),
    EncoderEntry("ctc_bilstm", "signal", "frame_logits", ConvBiLSTM, lambda config: 0,
                 "conv front end + BiLSTM emitting CTC frame logits"),
    # windows of signal epochs [B, W, C, L]
    EncoderEntry("sleep_stager", "epochs", "epoch_logits", SleepStager,
                 _config_value("embedding_dim", 64),
                 "epoch CNN + BiLSTM with per-epoch and CTC heads"),
)}


def list_encoders(modality: str | None = None, output: str | None = None) -> list[str]:
    """Sorted names of the registered architectures, optionally of one modality / output."""
    return sorted(name for name, entry in ENCODERS.items()
                  if modality in (None, entry.modality) and output in (None, entry.output))


def get_entry(architecture: str, *, modality: str | None = None,
              outputs: tuple[str, ...] | None = None) -> EncoderEntry:
    """The entry of ``architecture``; a clear error listing the valid names when it is unknown
    or does not read ``modality`` / return one of ``outputs``."""
    entry = ENCODERS.get(architecture)
    fits = entry is not None and modality in (None, entry.modality) and (
        outputs is None or entry.output in outputs)
    if not fits:
        valid = [name for name in list_encoders(modality)
                 if outputs is None or ENCODERS[name].output in outputs]
        what = f" for {modality} data" if modality else ""
        if outputs is not None:
            what += f" with output {'/'.join(outputs)}"
        known = "" if entry is None else (f" ('{architecture}' reads {entry.modality} data and "
                                           f"returns {entry.output})")
        raise ValueError(f"unknown architecture '{architecture}'{what}{known}; choose one of "
                         f"{valid}")
    return entry


def _factory_hints(factory: Any) -> dict[str, Any]:
    """The annotated keyword types of a model factory (a class's ``__init__`` or a function);
    empty where they cannot be resolved."""
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        return typing.get_type_hints(target)
    except (NameError, TypeError):
        return {}


@dataclass(frozen=True)
class EncoderSpec:
    """Which encoder to build, as parameters give it: ``architecture`` (a registry name) and
    its keyword ``config``. ``in_channels`` comes from the data, never from parameters.

    YAML: ``encoder: {architecture: vit, config: {patch_size: 4, depth: 4}}``.
    """

    architecture: str = "digit_cnn"
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        entry = get_entry(self.architecture)
        if "in_channels" in self.config:
            raise ValueError("config.in_channels is taken from the data; remove it")
        try:
            inspect.signature(entry.factory).bind_partial(**self.config)
        except TypeError as error:
            raise ValueError(f"config does not fit architecture '{self.architecture}': "
                             f"{error}") from None
        hints = _factory_hints(entry.factory)
        for key, value in self.config.items():
            problem = type_problem(value, hints[key]) if key in hints else None
            if problem is not None:
                raise ValueError(f"config.{key} {problem}")

    @property
    def entry(self) -> EncoderEntry:
        return get_entry(self.architecture)

    def model_config(self, in_channels: int) -> dict[str, Any]:
        return {"in_channels": in_channels, **self.config}

    def build(self, in_channels: int, *, seed: int) -> tuple[nn.Module, dict[str, Any]]:
        """``(model, its full config)`` with weights drawn from ``seed``."""
        config = self.model_config(in_channels)
        return build_model(self.architecture, config, seed=seed), config


def build_model_with_rng_state(architecture: str, config: dict[str, Any], *, seed: int
                               ) -> tuple[nn.Module, torch.Tensor]:
    """:func:`build_model` plus the state of torch's generator right after the weights were
    drawn (``torch.manual_seed(seed)`` then construction), for training code that goes on
    drawing from that stream, as reference implementations seeded once globally do."""
    entry = get_entry(architecture)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = entry.factory(**config)
        return model, torch.get_rng_state()


def build_model(architecture: str, config: dict[str, Any], *, seed: int) -> nn.Module:
    """Instantiate ``architecture`` with ``config``; weights are drawn from ``seed`` without
    touching the caller's global random state."""
    return build_model_with_rng_state(architecture, config, seed=seed)[0]


def to_bundle(model: nn.Module, architecture: str, config: dict[str, Any]) -> dict[str, Any]:
    """Detach ``model``'s weights to CPU into a storable bundle."""
    get_entry(architecture)
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    return {"architecture": architecture, "config": dict(config), "state_dict": state}


def from_bundle(bundle: dict[str, Any], *, modality: str | None = None,
                outputs: tuple[str, ...] | None = None) -> nn.Module:
    """Rebuild the model a bundle describes, in eval mode on the CPU. ``modality`` /
    ``outputs``, when given, say what the caller expects (a clear error otherwise)."""
    if not isinstance(bundle, dict) or "architecture" not in bundle:
        raise ValueError("not a model bundle: expected a dict with 'architecture', 'config' and "
                         "'state_dict'")
    get_entry(bundle["architecture"], modality=modality, outputs=outputs)
    config = dict(bundle["config"])
    if "in_channels" in bundle:  # time-series bundles written before the one registry
        config.setdefault("in_channels", bundle["in_channels"])
    model = build_model(bundle["architecture"], config, seed=0)
    model.load_state_dict(bundle["state_dict"])
    return model.eval()


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, *, batch_size: int = 512,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """Frozen embeddings ``[N, D]`` of ``images`` ``[N, ...]`` (``embed`` if the model has
    one, else ``forward``), computed in eval mode in batches."""
    was_training = model.training
    model.eval().to(device)
    encode = model.embed if hasattr(model, "embed") else model
    outputs = [encode(images[i:i + batch_size].to(device)).float().cpu()
               for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(outputs)
