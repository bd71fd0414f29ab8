"""Nodes of the generative pipeline: train a DDPM and a GAN with the one fit loop, sample
them, judge the samples in the supervised CNN's, the SimCLR encoder's and the pixel space,
and try the samples as extra training data in the 10-labels-per-class setting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.methods.averaging import WeightAveraging, check_decay
from contrastive_signals.methods.base import fit_method
from contrastive_signals.methods.diffusion import DiffusionMethod, DiffusionParams, sample
from contrastive_signals.methods.gan import GANMethod, GANParams, sample_gan
from contrastive_signals.methods.supervised import ClassifierParams
from contrastive_signals.methods.train import train_classifier
from contrastive_signals.metrics.generative import (
    frechet_distance,
    memorisation_ratio,
    precision_recall,
)
from contrastive_signals.metrics.probes import linear_probe_predict
from contrastive_signals.models.registry import build_model, embed, from_bundle
from contrastive_signals.plots.history import training_curves_figure
from contrastive_signals.training.fit import FitConfig
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

Features = dict[str, dict[str, torch.Tensor]]
NUM_CLASSES = 10


@dataclass(frozen=True)
class SamplingParams:
    """``sampler``: ``ancestral`` (all T steps) or ``ddim`` (``ddim_steps``, ``eta``);
    ``guidance``: classifier-free guidance weight w (0: the conditional model alone)."""

    sampler: str = "ddim"
    ddim_steps: int = 50
    eta: float = 0.0
    guidance: float = 1.0
    trajectory_frames: int = 8

    def __post_init__(self) -> None:
        if self.sampler not in ("ancestral", "ddim"):
            raise ValueError(f"sampler must be 'ancestral' or 'ddim', got '{self.sampler}'")
        if self.ddim_steps < 1 or self.eta < 0 or self.guidance < 0:
            raise ValueError("ddim_steps must be >= 1, eta and guidance >= 0")


@dataclass(frozen=True)
class DDPMRun:
    """``ema_decay``: the bundled (and sampled) weights are the exponential moving average of
    the trained ones with this decay (methods.averaging.ema_update); null: the last weights."""

    model: DiffusionParams
    fit: FitConfig
    sampling: SamplingParams = field(default_factory=SamplingParams)
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        check_decay(self.ema_decay)


@dataclass(frozen=True)
class GANRun:
    """``ema_decay`` as for :class:`DDPMRun` (the average of both players; samples come from
    the averaged generator)."""

    model: GANParams
    fit: FitConfig
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        check_decay(self.ema_decay)


@dataclass(frozen=True)
class EvaluationParams:
    """Samples per class for the measures; ``k`` of the k-NN manifolds; the synthetic-data
    study: ``labels_per_class`` real labels, ``synthetic_per_class`` samples added, over
    ``seeds``, the CNN trained with ``classifier_fit``."""

    samples_per_class: int = 25
    k: int = 3
    labels_per_class: int = 10
    synthetic_per_class: int = 50
    seeds: tuple[int, ...] = (0, 1, 2)
    classifier_fit: FitConfig = field(default_factory=lambda: FitConfig(
        epochs=30, learning_rate=0.01, progress=False, name="synthetic_cnn"))
    sample_seed: int = 1234

    def __post_init__(self) -> None:
        if self.samples_per_class < 2 or self.k < 1 or self.labels_per_class < 1:
            raise ValueError("samples_per_class must be >= 2, k and labels_per_class >= 1")
        if self.synthetic_per_class < 0 or not self.seeds:
            raise ValueError("synthetic_per_class must be >= 0 and seeds non-empty")


def _bundle(kind: str, params: Any, num_classes: int, model: torch.nn.Module) -> dict[str, Any]:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"kind": kind, "params": asdict(params), "num_classes": num_classes,
            "state_dict": state}


def _train(method: Any, data: dict[str, torch.Tensor], run: DDPMRun | GANRun, kind: str
           ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    batches = method.batches(data["images"], data["labels"])
    trained = method if run.ema_decay is None else WeightAveraging(method, decay=run.ema_decay)
    model, result = fit_method(trained, None, batches=batches, config=run.fit,
                               seed=run.fit.seed)
    return (_bundle(kind, run.model, method.num_classes, model), result.history,
            history_as_metric_steps(result.history, prefix=f"gen.{kind}"))


def train_ddpm(features: Features, params: dict[str, Any]):
    """DDPM on the training digits -> (bundle, history, history for MLflow)."""
    run = from_params(DDPMRun, params, path="generative.ddpm")
    return _train(DiffusionMethod(run.model, num_classes=NUM_CLASSES), features["train"], run,
                  "ddpm")


def train_gan(features: Features, params: dict[str, Any]):
    """GAN on the training digits -> (bundle, history, history for MLflow)."""
    run = from_params(GANRun, params, path="generative.gan")
    return _train(GANMethod(run.model, num_classes=NUM_CLASSES), features["train"], run, "gan")


def _load(bundle: dict[str, Any]) -> tuple[torch.nn.Module, Any]:
    if bundle["kind"] == "ddpm":
        params = DiffusionParams(**bundle["params"])
        model = DiffusionMethod(params, num_classes=NUM_CLASSES).build(seed=0)
    else:
        params = GANParams(**bundle["params"])
        model = GANMethod(params, num_classes=NUM_CLASSES).build(seed=0)
    model.load_state_dict(bundle["state_dict"])
    return model.eval(), params


def draw(bundle: dict[str, Any], sampling: SamplingParams, labels: torch.Tensor, seed: int,
         keep: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Samples ``[B, 1, 28, 28]`` of a stored generator for ``labels`` ``[B]``."""
    model, params = _load(bundle)
    generator = torch.Generator().manual_seed(seed)
    if bundle["kind"] == "gan":
        return sample_gan(model, labels, generator=generator,
                          conditional=params.conditional), []
    return sample(model, (len(labels), 1, 28, 28), generator=generator,
                  labels=labels if params.conditional else None, guidance=sampling.guidance,
                  sampler=sampling.sampler, ddim_steps=sampling.ddim_steps, eta=sampling.eta,
                  keep=keep)


def generate(ddpm: dict[str, Any], gan: dict[str, Any], ddpm_params: dict[str, Any],
             params: dict[str, Any]) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """Class-conditional samples of both generators: ``{"ddpm"|"gan": {"eval": images,
    "synthetic": images}, "labels_eval", "labels_synthetic"}`` and a DDPM trajectory."""
    run = from_params(DDPMRun, ddpm_params, path="generative.ddpm")
    ev = from_params(EvaluationParams, params, path="generative.evaluation")
    out: dict[str, Any] = {
        "labels_eval": torch.arange(NUM_CLASSES).repeat_interleave(ev.samples_per_class),
        "labels_synthetic": torch.arange(NUM_CLASSES).repeat_interleave(ev.synthetic_per_class)}
    trajectory: list[torch.Tensor] = []
    for kind, bundle in (("ddpm", ddpm), ("gan", gan)):
        images, _ = draw(bundle, run.sampling, out["labels_eval"], ev.sample_seed)
        synthetic, _ = draw(bundle, run.sampling, out["labels_synthetic"], ev.sample_seed + 1)
        out[kind] = {"eval": images, "synthetic": synthetic}
    _, trajectory = draw(ddpm, run.sampling, torch.arange(NUM_CLASSES), ev.sample_seed + 2,
                         keep=run.sampling.trajectory_frames)
    return out, trajectory


def class_balanced_halves(split: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two class-balanced halves of a split's indices (alternating within each class of
    ``split["labels"]`` ``[N]``)."""
    order = torch.argsort(split["labels"], stable=True)
    return order[0::2], order[1::2]


def _space_scores(prefix: str, real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    precision, recall = precision_recall(real, fake, k)
    return {f"fd_{prefix}": frechet_distance(real, fake), f"precision_{prefix}": precision,
            f"recall_{prefix}": recall}


def evaluate_generators(features: Features, supervised: dict[str, Any], simclr: dict[str, Any],
                        samples: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """``gen.<ddpm|gan|real_split>.<fd|precision|recall>_<supervised|simclr|pixels>``,
    ``gen.<kind>.cond_acc`` and ``gen.<kind>.memorisation`` (see metrics.generative). The
    reference is half A of the test split; ``real_split`` is half B against half A (the
    floor of each measure at this sample size)."""
    ev = from_params(EvaluationParams, params, path="generative.evaluation")
    classifier, encoder = from_bundle(supervised), from_bundle(simclr)
    spaces = {"supervised": lambda x: embed(classifier, x), "simclr": lambda x: embed(encoder, x),
              "pixels": lambda x: x.flatten(1)}
    test, train = features["test"], features["train"]
    half_a, half_b = class_balanced_halves(test)
    reference = test["images"][half_a]
    candidates = {"real_split": test["images"][half_b],
                  **{kind: samples[kind]["eval"] for kind in ("ddpm", "gan")}}
    report: dict[str, float] = {}
    for space, features_of in spaces.items():
        real = features_of(reference)
        for name, images in candidates.items():
            for key, value in _space_scores(space, real, features_of(images), ev.k).items():
                report[f"gen.{name}.{key}"] = value
    with torch.no_grad():
        for kind in ("ddpm", "gan"):
            predicted = classifier(samples[kind]["eval"]).argmax(1)
            report[f"gen.{kind}.cond_acc"] = float((predicted == samples["labels_eval"]).float().mean())
            report[f"gen.{kind}.memorisation"] = memorisation_ratio(
                samples[kind]["eval"], test["images"], train["images"])
    report["gen.real_split.cond_acc"] = float(
        (classifier(test["images"]).argmax(1) == test["labels"]).float().mean())
    for space in spaces:
        floor = report[f"gen.real_split.fd_{space}"]
        for kind in ("ddpm", "gan"):
            report[f"gen.{kind}.fd_{space}_over_floor"] = report[f"gen.{kind}.fd_{space}"] / max(
                floor, 1e-12)
    return report


def _few_labels(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels.numpy() == c), per_class, replace=False)
             for c in range(NUM_CLASSES)]
    return torch.from_numpy(np.concatenate(picks))


def synthetic_gain(features: Features, supervised: dict[str, Any], simclr: dict[str, Any],
                   samples: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """Test accuracy with ``labels_per_class`` real labels, with and without the DDPM's
    class-conditional samples: the linear probe on SimCLR embeddings and a fresh supervised
    CNN (the digits pipeline's architecture); mean and std over ``seeds``."""
    ev = from_params(EvaluationParams, params, path="generative.evaluation")
    encoder = from_bundle(simclr)
    train, test = features["train"], features["test"]
    extra_x, extra_y = samples["ddpm"]["synthetic"], samples["labels_synthetic"]
    test_emb = embed(encoder, test["images"]).numpy()
    scores: dict[str, list[float]] = {}
    for seed in ev.seeds:
        pick = _few_labels(train["labels"], ev.labels_per_class, seed)
        x, y = train["images"][pick], train["labels"][pick]
        for setting, (xs, ys) in {"real": (x, y), "real_plus_ddpm": (
                torch.cat([x, extra_x]), torch.cat([y, extra_y]))}.items():
            predicted = linear_probe_predict(embed(encoder, xs).numpy(), ys.numpy(), test_emb)
            scores.setdefault(f"probe.{setting}", []).append(
                float(np.mean(predicted == test["labels"].numpy())))
            cnn = build_model(supervised["architecture"], supervised["config"], seed=seed)
            config = FitConfig(**{**asdict(ev.classifier_fit), "seed": seed})
            train_classifier(cnn, (xs, ys), (test["images"][:2], test["labels"][:2]),
                             ClassifierParams(batch_size=32), config)
            with torch.no_grad():
                accuracy = (cnn.eval()(test["images"]).argmax(1) == test["labels"]).float().mean()
            scores.setdefault(f"cnn.{setting}", []).append(float(accuracy))
    report = {}
    for key, values in scores.items():
        report[f"gen.synthetic.{key}_acc_mean"] = float(np.mean(values))
        report[f"gen.synthetic.{key}_acc_std"] = float(np.std(values))
    return report


def generative_report(evaluation: dict[str, float], gain: dict[str, float]
                      ) -> tuple[dict[str, float], dict[str, Any]]:
    """Both reports as one JSON and as MLflow metrics."""
    merged = {**evaluation, **gain}
    return merged, final_metrics_as_steps(merged)


def sample_grid_figure(samples: dict[str, Any], *, kind: str, per_class: int = 8) -> Figure:
    """One row per class of ``per_class`` samples of generator ``kind``."""
    images, labels = samples[kind]["eval"], samples["labels_eval"]
    figure = Figure(figsize=(per_class * 0.7, NUM_CLASSES * 0.7))
    axes = figure.subplots(NUM_CLASSES, per_class, squeeze=False)
    for c in range(NUM_CLASSES):
        row = images[labels == c][:per_class]
        for j, ax in enumerate(axes[c]):
            ax.axis("off")
            if j < len(row):
                ax.imshow(row[j, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
    figure.suptitle(f"{kind}: samples per class (rows 0-9)")
    return figure


def trajectory_figure(trajectory: list[torch.Tensor]) -> Figure:
    """The denoising trajectory ``x_T -> x_0`` of one DDPM sample per class (columns: time)."""
    frames = len(trajectory)
    figure = Figure(figsize=(max(frames, 1) * 0.8, NUM_CLASSES * 0.8))
    axes = figure.subplots(NUM_CLASSES, max(frames, 1), squeeze=False)
    for j, frame in enumerate(trajectory):
        for c in range(NUM_CLASSES):
            axes[c][j].imshow(frame[c, 0].clamp(-1, 1).numpy(), cmap="gray", vmin=-1, vmax=1)
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle("DDPM denoising trajectory (left: x_T, right: before the last step)")
    return figure


def curves_figure(ddpm: dict[str, list[float]], gan: dict[str, list[float]]) -> Figure:
    """Training curves of both generators."""
    gan_curves = {k: v for k, v in gan.items() if k.endswith("loss")}
    return training_curves_figure({"ddpm": ddpm, "gan": gan_curves},
                                  title="generative: training curves")
