"""wav2vec 2.0-style pretraining on raw sleep EEG and its label-efficiency test: the sleep
stager (CNN + BiLSTM with CTC and per-epoch heads) fine-tuned with its epoch CNN initialised
from the wav2vec feature encoder against the same model from scratch, on a share of the
labelled training recordings, over several seeds."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from contrastive_signals.config import from_params
from contrastive_signals.models.registry import to_bundle
from contrastive_signals.models.wav2vec import (
    PretrainConfig,
    Wav2Vec2,
    Wav2VecObjective,
    evaluate_wav2vec,
    pretrain_wav2vec,
)
from contrastive_signals.pipelines.sleep.nodes import (
    SleepEvaluationParams,
    TrainingParams,
    _recordings_of,
    evaluate_sleep_predictions,
    fit_sleep_stager,
    predict_sleep_stages,
)
from contrastive_signals.plots.label_efficiency import label_efficiency_figure
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import FitConfig
from contrastive_signals.training.history import final_metrics_as_steps, history_as_metric_steps

logger = logging.getLogger(__name__)

INITS = ("w2v", "scratch")
REPORTED = ("cer", "macro_f1", "epoch_acc", "kappa")


@dataclass(frozen=True)
class ContextParams:
    """The Transformer context network and the quantiser (see ``models/wav2vec.py``)."""

    model_dim: int = 64
    layers: int = 2
    heads: int = 4
    ff_dim: int = 128
    pos_conv_kernel: int = 9
    pos_conv_groups: int = 4
    dropout: float = 0.1
    codebook_groups: int = 2
    codebook_entries: int = 32
    code_dim: int = 64
    final_dim: int = 64

    def __post_init__(self) -> None:
        if self.model_dim % self.heads or self.model_dim % self.pos_conv_groups:
            raise ValueError(f"model_dim ({self.model_dim}) must be divisible by heads "
                             f"({self.heads}) and pos_conv_groups ({self.pos_conv_groups})")
        if self.code_dim % self.codebook_groups:
            raise ValueError(f"code_dim ({self.code_dim}) must be divisible by codebook_groups "
                             f"({self.codebook_groups})")
        if self.codebook_entries < 2:
            raise ValueError(f"codebook_entries must be >= 2, got {self.codebook_entries}")


@dataclass(frozen=True)
class PretrainingParams:
    segment_epochs: int = 4      # consecutive 30-s epochs per pretraining sequence
    batch_size: int = 16         # sequences per step
    val_batches: int = 4         # fixed validation batches (validation nights), 0: none
    num_threads: int | None = 1
    model: ContextParams = field(default_factory=ContextParams)
    objective: Wav2VecObjective = field(default_factory=Wav2VecObjective)
    steps_per_epoch: int = 50
    max_nonfinite_steps: int = 10
    collapse_perplexity: float = 1.5
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=8, learning_rate=1e-3,
                                                             grad_clip_norm=5.0))

    def __post_init__(self) -> None:
        if self.segment_epochs < 1 or self.batch_size < 1 or self.val_batches < 0:
            raise ValueError("segment_epochs and batch_size must be >= 1, val_batches >= 0")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(objective=self.objective, steps_per_epoch=self.steps_per_epoch,
                              fit=replace(self.fit, name="wav2vec"),
                              max_nonfinite_steps=self.max_nonfinite_steps,
                              collapse_perplexity=self.collapse_perplexity)


@dataclass(frozen=True)
class LabelEfficiencyParams:
    fractions: tuple[float, ...] = (0.1, 1.0)   # shares of the labelled training recordings
    epochs: tuple[int, ...] = (20, 5)           # fine-tuning epochs per fraction
    seeds: tuple[int, ...] = (0, 1, 2)          # model seed and recording subset per run
    subset_seed: int = 0
    training: TrainingParams = field(default_factory=TrainingParams)
    evaluation: SleepEvaluationParams = field(default_factory=SleepEvaluationParams)

    def __post_init__(self) -> None:
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")
        if len(self.epochs) != len(self.fractions) or any(e < 1 for e in self.epochs):
            raise ValueError(f"epochs needs one value >= 1 per fraction, got {self.epochs} for "
                             f"{self.fractions}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds}")


def fraction_name(fraction: float) -> str:
    """0.1 -> ``"10pc"``, 1.0 -> ``"100pc"`` (as in the metric names)."""
    return f"{round(100 * fraction):d}pc"


def label_subset(n_recordings: int, *, fraction: float, seed: int, subset_seed: int) -> list[int]:
    """Sorted indices of ``max(1, round(fraction * n))`` training recordings, drawn from
    ``default_rng([subset_seed, seed])``: each seed its own subset, shared by both inits."""
    count = min(n_recordings, max(1, round(fraction * n_recordings)))
    rng = np.random.default_rng([subset_seed, seed])
    return sorted(int(i) for i in rng.choice(n_recordings, count, replace=False))


# ----------------------------------------------------------------------- pretraining


def _segments(recordings: list[dict[str, Any]], length: int):
    """``(recording, start)`` sampler of ``length`` consecutive epochs -> ``[C, length * L]``."""
    usable = [r for r in recordings if len(r["labels"]) >= length]
    if not usable:
        raise ValueError(f"no recording holds {length} epochs (wav2vec.pretraining.segment_epochs)")
    weights = torch.tensor([len(r["labels"]) - length + 1 for r in usable], dtype=torch.float)

    def draw(count: int, generator: torch.Generator) -> torch.Tensor:
        rows = torch.multinomial(weights, count, replacement=True, generator=generator)
        out = []
        for row in rows.tolist():
            start = int(torch.randint(int(weights[row]), (1,), generator=generator))
            out.append(usable[row]["epochs"][start:start + length].transpose(0, 1).flatten(1))
        return torch.stack(out)                                   # [B, C, length * L]

    return draw


def pretrain_sleep_wav2vec(epochs: dict[str, Any], split: dict[str, Any], params: dict[str, Any],
                           label_params: dict[str, Any]
                           ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    """Pretrain wav2vec on every training night (labels unused), monitored on the validation
    nights; the feature encoder is the stager's epoch CNN.

    Returns:
        the model bundle (``architecture: wav2vec2``), per-epoch history (loss, contrastive,
        diversity, perplexities, accuracy, temperature, ``val_*``) and that history for MLflow.
    """
    config = from_params(PretrainingParams, params, path="wav2vec.pretraining")
    stager = from_params(LabelEfficiencyParams, label_params, path="wav2vec.label_efficiency")
    draw = _segments(_recordings_of(epochs, split, "train"), config.segment_epochs)
    val = _recordings_of(epochs, split, "val")
    model_config = {"in_channels": len(epochs["channels"]), "encoder": "sleep_cnn",
                    "base_channels": stager.training.model.base_channels, **asdict(config.model)}
    seed_everything(config.fit.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.fit.seed)
        model = Wav2Vec2(**model_config)
    validate = None
    if val and config.val_batches:
        val_draw = _segments(val, config.segment_epochs)
        fixed = torch.Generator().manual_seed(config.fit.seed)
        val_set = [val_draw(config.batch_size, fixed) for _ in range(config.val_batches)]

        def validate(net: Wav2Vec2) -> dict[str, float]:
            return evaluate_wav2vec(net, val_set, objective=config.objective, seed=config.fit.seed)

    def batches(epoch: int, generator: torch.Generator):
        for _ in range(config.steps_per_epoch):
            yield draw(config.batch_size, generator)

    with torch_threads(config.num_threads):
        model, history = pretrain_wav2vec(model, batches=batches, config=config.pretrain_config(),
                                          validate=validate)
    bundle = to_bundle(model, "wav2vec2", model_config)
    return bundle, history, history_as_metric_steps(history, prefix="wav2vec")


# -------------------------------------------------------------------- label efficiency


def encoder_features_of(bundle: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The feature-encoder weights of a wav2vec bundle (keys of ``epoch_feature_layers``)."""
    prefix = "feature_encoder."
    state = {k[len(prefix):]: v for k, v in bundle["state_dict"].items() if k.startswith(prefix)}
    if bundle.get("architecture") != "wav2vec2" or not state:
        raise ValueError("the pretrained bundle is not a wav2vec2 model with a feature encoder")
    return state


def run_label_efficiency(epochs: dict[str, Any], split: dict[str, Any], bundle: dict[str, Any],
                         params: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune the sleep stager (wav2vec-initialised epoch CNN, and from scratch) on each
    share of the labelled training nights for each seed; evaluate on the test nights.

    Returns:
        ``{"runs": [{"fraction", "init", "seed", "recordings": [names], "metrics": {cer,
        macro_f1, epoch_acc, kappa, transitions_abs_err}, "epochs_trained"}]}``.
    """
    config = from_params(LabelEfficiencyParams, params, path="wav2vec.label_efficiency")
    pretrained = encoder_features_of(bundle)
    train = _recordings_of(epochs, split, "train")
    val = _recordings_of(epochs, split, "val")
    evaluation = asdict(config.evaluation)
    runs = []
    for fraction, n_epochs in zip(config.fractions, config.epochs, strict=True):
        for seed in config.seeds:
            subset = [train[i] for i in label_subset(len(train), fraction=fraction, seed=seed,
                                                     subset_seed=config.subset_seed)]
            training = replace(config.training, fit=replace(config.training.fit, seed=seed,
                                                            epochs=n_epochs))
            for init in INITS:
                name = f"sleep_{init}_{fraction_name(fraction)}_seed{seed}"
                stager, history = fit_sleep_stager(
                    subset, val, stages=epochs["stages"], config=training, name=name,
                    encoder_features=pretrained if init == "w2v" else None,
                    path="wav2vec.label_efficiency.training")
                predictions = predict_sleep_stages(epochs, split, stager, evaluation,
                                                   path="wav2vec.label_efficiency.evaluation")
                metrics, _ = evaluate_sleep_predictions(predictions)
                metrics = {k.removeprefix("sleep."): v for k, v in metrics.items()}
                logger.info("%s (%d recordings): %s", name, len(subset),
                            " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
                runs.append({"fraction": fraction, "init": init, "seed": seed,
                             "recordings": [r["name"] for r in subset], "metrics": metrics,
                             "epochs_trained": len(history["train_loss"])})
    return {"runs": runs}


def summarise_label_efficiency(results: dict[str, Any]
                               ) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Mean and standard deviation (population, over seeds) of each reported figure:
    ``sleep.<init>_<NN>pc.<metric>`` and ``sleep.<init>_<NN>pc.<metric>.std``, plus
    ``sleep.<init>_<NN>pc.n_recordings``.

    Returns:
        the flat dict twice (the ``ts_sleep_metrics`` dataset and the ``wav2vec_metrics``
        report) and the same shaped for MLflow.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in results["runs"]:
        groups.setdefault(f"sleep.{run['init']}_{fraction_name(run['fraction'])}", []).append(run)
    flat: dict[str, float] = {}
    for prefix, runs in sorted(groups.items()):
        for metric in REPORTED:
            values = np.array([r["metrics"][metric] for r in runs], dtype=float)
            flat[f"{prefix}.{metric}"] = float(values.mean())
            flat[f"{prefix}.{metric}.std"] = float(values.std())
        flat[f"{prefix}.n_recordings"] = float(len(runs[0]["recordings"]))
    return flat, dict(flat), final_metrics_as_steps(flat)


def plot_label_efficiency(results: dict[str, Any]) -> Figure:
    """CER and macro-F1 against the share of labelled recordings, wav2vec vs scratch."""
    return label_efficiency_figure(
        [{"group": run["init"], "fraction": run["fraction"], **run["metrics"]}
         for run in results["runs"]],
        metrics=("cer", "macro_f1"), title="sleep stager: wav2vec init vs scratch (test nights)")
