"""Training and evaluation recipes of the ``afm`` pipeline, on in-memory tensors (no Kedro,
no files): SimCLR pretraining, triplet fine-tuning with a classifier head, a supervised CNN,
the tuned ``find_peaks`` detector, and F1 scores. All go through
:func:`contrastive_signals.training.fit.fit`."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from contrastive_signals.data.afm_simulator import AFM_CLASSES
from contrastive_signals.data.triplet_sampling import pk_batches
from contrastive_signals.losses.ntxent import nt_xent_loss
from contrastive_signals.losses.triplet import mined_triplet_loss
from contrastive_signals.models.encoders import ProjectionHead
from contrastive_signals.models.registry import build_model, embed, from_bundle, to_bundle
from contrastive_signals.pipelines.afm.params import (
    FindPeaksParams,
    FinetuningParams,
    PretrainingParams,
    SupervisedParams,
)
from contrastive_signals.signal.force_curves import classify_by_peaks, detect_events
from contrastive_signals.training.batches import shuffled_minibatches
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import FitConfig, fit

ARCHITECTURE = "curve_cnn"


# ---------------------------------------------------------------------------- scores
def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``{"<class>.f1": ..., "macro_f1": ..., "accuracy": ...}`` over :data:`AFM_CLASSES`."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.arange(len(AFM_CLASSES))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    scores = {f"{name}.f1": float(v) for name, v in zip(AFM_CLASSES, per_class, strict=True)}
    scores["macro_f1"] = float(np.mean(per_class))
    scores["accuracy"] = float(np.mean(y_true == y_pred))
    return scores


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted labels [N], embeddings [N, D])`` of a :class:`CurveCNN` in eval mode."""
    model.eval()
    z = embed(model, x, batch_size=batch_size)
    logits = model.head(z)
    return logits.argmax(dim=1).numpy(), z.numpy()


def _macro_f1_validation(x_val: torch.Tensor, y_val: torch.Tensor):
    def validate(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        logits = torch.cat([model(x_val[i:i + 512].to(device)).float().cpu()
                            for i in range(0, len(x_val), 512)])
        scores = classification_scores(y_val.numpy(), logits.argmax(1).numpy())
        return {"val_loss": F.cross_entropy(logits, y_val).item(),
                "val_macro_f1": scores["macro_f1"]}
    return validate


def _knn_validation(x_ref: torch.Tensor, y_ref: torch.Tensor, x_val: torch.Tensor,
                    y_val: torch.Tensor, *, k: int = 5):
    """Cosine kNN accuracy of validation curves against reference curves (a cheap probe)."""
    def validate(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        encoder = model.encoder if hasattr(model, "encoder") else model
        ref = F.normalize(embed(encoder, x_ref, device=device), dim=1)
        val = F.normalize(embed(encoder, x_val, device=device), dim=1)
        neighbours = (val @ ref.T).topk(min(k, len(ref)), dim=1).indices
        predicted = torch.mode(y_ref[neighbours], dim=1).values
        return {"val_knn_acc": (predicted == y_val).float().mean().item()}
    return validate


# ---------------------------------------------------------------------------- SimCLR
class SimCLRNet(nn.Module):
    """Encoder plus SimCLR projection head; ``forward`` = projection of the embedding."""

    def __init__(self, encoder: nn.Module, projection: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projection = projection

    def forward(self, curves: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> ``[B, projection_dim]``."""
        return self.projection(self.encoder.embed(curves))


def pretrain_simclr(x: torch.Tensor, *, encoder_config: dict[str, Any], config: PretrainingParams,
                    x_val: torch.Tensor, y_val: torch.Tensor, y_ref: torch.Tensor,
                    ref_index: torch.Tensor) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """SimCLR on unlabelled curves ``x`` ``[N, C, L]``: two augmented views per curve,
    NT-Xent on their projections. Validation: kNN accuracy of the embeddings (labels are
    used only to monitor, never to train).

    Returns:
        the encoder bundle (``curve_cnn``; its head is untrained) and the history.
    """
    derivative = encoder_config["in_channels"] == 2
    augment = dataclasses.replace(config.augmentation, derivative_channel=derivative)
    seed_everything(config.fit.seed)
    encoder = build_model(ARCHITECTURE, encoder_config, seed=config.fit.seed)
    net = SimCLRNet(encoder, ProjectionHead(encoder.embedding_dim, config.projection_hidden,
                                            config.projection_dim))

    def batches(epoch: int, generator: torch.Generator):
        return shuffled_minibatches(x, batch_size=min(config.batch_size, len(x)),
                                    generator=generator)

    def loss_fn(model: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
        (curves,) = batch
        view_a = augment(curves.cpu(), generator).to(curves.device)
        view_b = augment(curves.cpu(), generator).to(curves.device)
        return nt_xent_loss(model(view_a), model(view_b), temperature=config.temperature)

    with torch_threads(config.num_threads):
        result = fit(net, loss_fn=loss_fn, batches=batches, config=config.fit,
                     validate=_knn_validation(x[ref_index], y_ref, x_val, y_val))
    return to_bundle(result.model.encoder.cpu(), ARCHITECTURE, encoder_config), result.history


# ---------------------------------------------------------------------------- triplet + head
def _pk_epoch(labels: torch.Tensor, *, config: FinetuningParams, generator: torch.Generator
              ) -> Iterator[torch.Tensor]:
    """``batches_per_epoch`` P x K index batches (several P x K epochs chained when the
    labelled set is small)."""
    chunks = itertools.chain.from_iterable(
        pk_batches(labels, classes_per_batch=min(config.classes_per_batch,
                                                 int(labels.unique().numel())),
                   samples_per_class=config.samples_per_class, generator=generator)
        for _ in itertools.count())
    return itertools.islice(chunks, config.batches_per_epoch)


def finetune_with_head(encoder_bundle: dict[str, Any], x: torch.Tensor, y: torch.Tensor, *,
                       x_val: torch.Tensor, y_val: torch.Tensor, config: FinetuningParams
                       ) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Triplet fine-tuning of the encoder on labelled curves (P x K batches, mined triplets),
    then a classifier head trained with cross-entropy on the frozen embeddings.

    Args:
        encoder_bundle: the starting ``curve_cnn`` (SimCLR-pretrained or freshly initialised).
        x, y: labelled training curves ``[N, C, L]`` and labels ``[N]``.
        x_val, y_val: validation curves and labels (kNN accuracy; head macro-F1).

    Returns:
        the classifier bundle (encoder + head) and the history (``triplet.*``, ``head.*``).
    """
    seed_everything(config.fit.seed)
    model = from_bundle(encoder_bundle)

    def triplet_batches(epoch: int, generator: torch.Generator):
        for index in _pk_epoch(y, config=config, generator=generator):
            yield x[index], y[index]

    def triplet_loss(net: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
        curves, labels = batch
        return mined_triplet_loss(net.embed(curves), labels, margin=config.margin,
                                  mining=config.mining, metric=config.metric)

    with torch_threads(config.num_threads):
        tuned = fit(model, loss_fn=triplet_loss, batches=triplet_batches,
                    config=dataclasses.replace(config.fit, name="afm_triplet"),
                    validate=_knn_validation(x, y, x_val, y_val)).history
        if config.head.train_encoder:
            trained = _fit_classifier(model, x, y, x_val=x_val, y_val=y_val,
                                      batch_size=config.head.batch_size,
                                      fit_config=dataclasses.replace(config.head.fit,
                                                                     name="afm_head"))
            head = model.head
        else:
            head, trained = _fit_frozen_head(model, x, y, x_val=x_val, y_val=y_val,
                                             config=config)
    model.head = head.cpu()
    history = {f"triplet.{k}": v for k, v in tuned.items()}
    history.update({f"head.{k}": v for k, v in trained.items()})
    return to_bundle(model.cpu(), ARCHITECTURE, encoder_bundle["config"]), history


def _fit_frozen_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, x_val: torch.Tensor,
                     y_val: torch.Tensor, config: FinetuningParams
                     ) -> tuple[nn.Module, dict[str, list[float]]]:
    """Cross-entropy on the frozen embeddings: only ``model.head`` learns."""
    z, z_val = embed(model, x), embed(model, x_val)
    head = model.head

    def head_batches(epoch: int, generator: torch.Generator):
        return shuffled_minibatches(z, y, batch_size=min(config.head.batch_size, len(z)),
                                    generator=generator)

    def head_loss(net: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
        features, labels = batch
        return F.cross_entropy(net(features), labels)

    def head_validate(net: nn.Module) -> dict[str, float]:
        logits = net(z_val.to(next(net.parameters()).device)).float().cpu()
        return {"val_loss": F.cross_entropy(logits, y_val).item(), "val_macro_f1":
                classification_scores(y_val.numpy(), logits.argmax(1).numpy())["macro_f1"]}

    history = fit(head, loss_fn=head_loss, batches=head_batches,
                  config=dataclasses.replace(config.head.fit, name="afm_head"),
                  validate=head_validate).history
    return head, history


def _fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, x_val: torch.Tensor,
                    y_val: torch.Tensor, batch_size: int, fit_config: FitConfig,
                    label_smoothing: float = 0.0) -> dict[str, list[float]]:
    """Cross-entropy on the curves through the whole model (encoder and head)."""
    def batches(epoch: int, generator: torch.Generator):
        return shuffled_minibatches(x, y, batch_size=min(batch_size, len(x)),
                                    generator=generator)

    def loss_fn(net: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
        curves, labels = batch
        return F.cross_entropy(net(curves), labels, label_smoothing=label_smoothing)

    return fit(model, loss_fn=loss_fn, batches=batches, config=fit_config,
               validate=_macro_f1_validation(x_val, y_val)).history


# ---------------------------------------------------------------------------- supervised
def train_supervised(x: torch.Tensor, y: torch.Tensor, *, x_val: torch.Tensor,
                     y_val: torch.Tensor, model_config: dict[str, Any], config: SupervisedParams
                     ) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The supervised 1-D CNN from scratch: cross-entropy on labelled curves, validation
    macro-F1 and loss per epoch (early stopping as ``config.fit`` says)."""
    seed_everything(config.fit.seed)
    model = build_model(ARCHITECTURE, model_config, seed=config.fit.seed)
    with torch_threads(config.num_threads):
        history = _fit_classifier(model, x, y, x_val=x_val, y_val=y_val,
                                  batch_size=config.batch_size, fit_config=config.fit,
                                  label_smoothing=config.label_smoothing)
    return to_bundle(model.cpu(), ARCHITECTURE, model_config), history


# ---------------------------------------------------------------------------- find_peaks
def tune_find_peaks(force: np.ndarray, labels: np.ndarray, *, contact_index: int,
                    config: FindPeaksParams) -> dict[str, Any]:
    """Grid search of the detector's prominence and contact zone on training curves,
    maximising macro-F1 (ties: the first, i.e. smallest, setting).

    Args:
        force: ``[N, L]`` preprocessed force channel; labels: ``[N]``.
        contact_index: the aligned contact point (sample index).

    Returns:
        ``{"prominence", "contact_zone", "contact_index", "train_macro_f1"}``.
    """
    best: dict[str, Any] = {"train_macro_f1": -1.0}
    for prominence in config.prominences:
        events = detect_events(force, prominence=prominence)
        for zone in config.contact_zones:
            predicted = classify_by_peaks(events, contact_index=contact_index, contact_zone=zone)
            score = classification_scores(labels, predicted)["macro_f1"]
            if score > best["train_macro_f1"]:
                best = {"prominence": float(prominence), "contact_zone": int(zone),
                        "contact_index": int(contact_index), "train_macro_f1": score}
    return best


def find_peaks_predict(force: np.ndarray, detector: dict[str, Any]
                       ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(labels [N], events)`` of the tuned detector on ``force`` ``[N, L]``."""
    events = detect_events(force, prominence=detector["prominence"])
    return classify_by_peaks(events, contact_index=detector["contact_index"],
                             contact_zone=detector["contact_zone"]), events
