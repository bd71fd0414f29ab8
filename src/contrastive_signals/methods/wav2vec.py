"""wav2vec 2.0-style pretraining as a method for :func:`~contrastive_signals.training.fit.fit`.

The registry gives the *feature encoder* (any ``signal`` encoder with ``frames`` output:
``w2v_conv``, ``sleep_cnn``); the method owns the rest of :class:`~contrastive_signals.models.wav2vec.Wav2Vec2`
(norm, projection, mask embedding, positional convolution, context Transformer, quantiser,
``project_q``). Per batch ``x`` ``[B, C, L]`` the loss draws the span mask, the Gumbel noise and
the distractors from fit's generator and returns the contrastive loss
``L_m + alpha L_d + beta * feature penalty`` with its parts (contrastive, diversity, feature
penalty, accuracy, perplexities per codebook group: 1 = collapsed, ``entries`` = uniform).
With ``objective.targets`` ``clusters`` (or ``quantizer+clusters``) masked frames predict,
HuBERT-style, the k-means cluster of each input channel's log band powers instead of (or as
well as) their quantised frames (:mod:`contrastive_signals.losses.hubert`); the k-means is
fitted before training (:meth:`Wav2VecMethod.fit_targets`) and kept in the method's state.

State: the Gumbel temperature, annealed geometrically over ``total_steps`` training steps; every
call of :meth:`Wav2VecMethod.loss` is one step, also when fit then skips the step as non-finite
(so the schedule does not stall on a NaN spike). The epoch's last temperature joins the history
(``temperature``), and a warning says when the codebook collapses. Failure guards: float32
logits, gradient clipping required, non-finite steps skipped by fit
(``FitConfig.max_nonfinite_steps``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from contrastive_signals.config import require_at_least, require_positive
from contrastive_signals.data.sleep_epochs import segment_sampler
from contrastive_signals.losses.hubert import (
    DEFAULT_BANDS,
    ClusterTargets,
    check_bands,
    cluster_perplexity,
    frame_band_powers,
    masked_cluster_loss,
)
from contrastive_signals.losses.wav2vec import (
    diversity_loss,
    sample_cross_distractors,
    sample_distractors,
    wav2vec_contrastive_loss,
)
from contrastive_signals.methods.base import Requirements, check_compatible
from contrastive_signals.models.registry import build_model_with_rng_state
from contrastive_signals.models.wav2vec import (
    ContextualFrameEncoder,
    FrameContext,
    Wav2Vec2,
    frame_context_state,
    gumbel_temperature,
)
from contrastive_signals.training.device import seed_everything, torch_threads
from contrastive_signals.training.fit import BatchesFn, FitConfig, LossOutput, ValidateFn, fit
from contrastive_signals.training.ranks import mean_over_ranks, rank_generator, shard

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameContextParams:
    """wav2vec's Transformer context network (see :class:`Wav2Vec2`); also what a downstream
    model that fine-tunes it builds (``frame_context`` of the sleep stager)."""

    model_dim: int = 64
    layers: int = 2
    heads: int = 4
    ff_dim: int = 128
    pos_conv_kernel: int = 9
    pos_conv_groups: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        require_at_least(self, ("model_dim", "layers", "heads", "ff_dim", "pos_conv_kernel",
                                "pos_conv_groups"), 1)
        if self.model_dim % self.heads or self.model_dim % self.pos_conv_groups:
            raise ValueError(f"model_dim ({self.model_dim}) must be divisible by heads "
                             f"({self.heads}) and pos_conv_groups ({self.pos_conv_groups})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class ContextParams(FrameContextParams):
    """The context network (:class:`FrameContextParams`) and the quantiser."""

    codebook_groups: int = 2
    codebook_entries: int = 32
    code_dim: int = 64
    final_dim: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.code_dim % self.codebook_groups:
            raise ValueError(f"code_dim ({self.code_dim}) must be divisible by codebook_groups "
                             f"({self.codebook_groups})")
        if self.codebook_entries < 2:
            raise ValueError(f"codebook_entries must be >= 2, got {self.codebook_entries}")

    def frame_context(self) -> FrameContextParams:
        """The context network's part of these settings."""
        return FrameContextParams(**{f.name: getattr(self, f.name)
                                     for f in fields(FrameContextParams)})


TARGETS = ("quantizer", "clusters", "quantizer+clusters")


@dataclass(frozen=True)
class Wav2VecObjective:
    """Masking and loss settings (wav2vec 2.0's defaults where they carry over)."""

    mask_prob: float = 0.65          # share of frames picked as span starts
    mask_span: int = 3               # frames per masked span
    num_negatives: int = 20          # distractors K per masked frame, from the same sequence
    cross_sample_negatives: int = 0  # extra distractors from any sequence of the batch
    logit_temperature: float = 0.1   # kappa of the cosine logits
    diversity_weight: float = 0.1    # alpha
    feature_penalty_weight: float = 1.0
    gumbel_start: float = 2.0        # Gumbel temperature, annealed geometrically per step
    gumbel_end: float = 0.5
    # What a masked frame predicts: "quantizer" (wav2vec 2.0: its quantised encoder frame
    # among distractors), "clusters" (HuBERT: per input channel, the k-means cluster of the
    # frame's log band powers; the quantiser and its settings are then unused) or
    # "quantizer+clusters" (both losses, summed).
    targets: str = "quantizer"
    cluster_weight: float = 1.0      # of the cluster term
    clusters: int = 32               # k-means clusters per channel
    cluster_fit_batches: int = 64    # training batches whose frames the k-means sees
    cluster_bands: tuple[tuple[float, float], ...] = DEFAULT_BANDS  # Hz, [low, high)

    def __post_init__(self) -> None:
        if not 0 < self.mask_prob <= 1:
            raise ValueError(f"mask_prob must lie in (0, 1], got {self.mask_prob}")
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        if self.cluster_weight <= 0:
            raise ValueError(f"cluster_weight must be > 0, got {self.cluster_weight}")
        if self.clusters < 2 or self.cluster_fit_batches < 1:
            raise ValueError(f"clusters must be >= 2 and cluster_fit_batches >= 1, got "
                             f"{self.clusters}, {self.cluster_fit_batches}")
        check_bands(self.cluster_bands, name="cluster_bands")
        # YAML gives lists: keep the bands hashable, as the frozen dataclass promises
        object.__setattr__(self, "cluster_bands", tuple(tuple(float(edge) for edge in band)
                                                        for band in self.cluster_bands))
        if self.cross_sample_negatives < 0:
            raise ValueError(f"cross_sample_negatives must be >= 0, got {self.cross_sample_negatives}")
        if self.mask_span < 1 or self.num_negatives < 1:
            raise ValueError(f"mask_span and num_negatives must be >= 1, got {self.mask_span}, "
                             f"{self.num_negatives}")
        require_positive(self, ("logit_temperature", "gumbel_start", "gumbel_end"))
        if self.diversity_weight < 0 or self.feature_penalty_weight < 0:
            raise ValueError("diversity_weight and feature_penalty_weight must be >= 0")


@dataclass(frozen=True)
class Wav2VecParams:
    """The method: context network and quantiser (``model``), ``objective``, and the code
    perplexity per group below which an epoch warns of codebook collapse."""

    model: ContextParams = field(default_factory=ContextParams)
    objective: Wav2VecObjective = field(default_factory=Wav2VecObjective)
    collapse_perplexity: float = 1.5


def check_fit(config: FitConfig) -> None:
    """wav2vec's guards against loss spikes must be on: gradient clipping (fit checks the
    clipped norm's finiteness only when clipping) and skipping of non-finite steps."""
    if config.grad_clip_norm is None or config.max_nonfinite_steps is None:
        raise ValueError("fit.grad_clip_norm and fit.max_nonfinite_steps must be set: wav2vec "
                         "pretraining clips gradients and skips the odd non-finite step")


def quantizer_terms(out: dict[str, torch.Tensor], *, objective: Wav2VecObjective,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor,
                                                         dict[str, torch.Tensor]]:
    """wav2vec 2.0's terms of the network's output ``out``: the contrastive loss ``L_m`` and
    the diversity loss ``L_d`` (averaged over all ranks' masked frames and codeword use), and
    the parts contrastive, diversity, accuracy, prob_perplexity, code_perplexity (per codebook
    group). Draws the distractors from ``generator``."""
    negatives = sample_distractors(out["mask"], num_negatives=objective.num_negatives,
                                   generator=generator)
    if objective.cross_sample_negatives:
        negatives = torch.cat([negatives, sample_cross_distractors(
            len(negatives), num_negatives=objective.cross_sample_negatives, generator=generator,
            device=negatives.device)], dim=1)
    contrastive, accuracy = wav2vec_contrastive_loss(
        out["context"], out["quantized"], negatives, temperature=objective.logit_temperature)
    masked = out["mask"].sum()
    contrastive, accuracy = (mean_over_ranks(contrastive, masked),
                             mean_over_ranks(accuracy, masked))
    diversity = diversity_loss(mean_over_ranks(out["probs"]))
    groups = out["probs"].shape[0]
    return contrastive, diversity, {
        "contrastive": contrastive.detach(), "diversity": diversity.detach(),
        "accuracy": accuracy, "prob_perplexity": out["prob_perplexity"].detach() / groups,
        "code_perplexity": out["code_perplexity"] / groups}


def cluster_terms(out: dict[str, torch.Tensor], x: torch.Tensor, *, objective: Wav2VecObjective,
                  targets: ClusterTargets, sampling_rate: float
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """HuBERT's term of the network's output ``out`` for the (rank's) batch ``x`` ``[B, C, L]``:
    the cross-entropy of the cluster head's logits against, per channel, the k-means cluster of
    each masked frame's log band powers (mean over all ranks' masked frames and the channels),
    and the parts cluster_cross_entropy, cluster_accuracy, target_perplexity (the clusters'
    use over the batch's masked frames, mean over channels)."""
    mask = out["mask"]
    features = frame_band_powers(x, frames=mask.shape[1], sampling_rate=sampling_rate,
                                 bands=objective.cluster_bands)
    labels = targets.assign(features)[mask]                                # [M, C]
    cross_entropy, accuracy = masked_cluster_loss(out["logits"], labels)
    masked = mask.sum()
    cross_entropy, accuracy = (mean_over_ranks(cross_entropy, masked),
                               mean_over_ranks(accuracy, masked))
    return cross_entropy, {
        "cluster_cross_entropy": cross_entropy.detach(), "cluster_accuracy": accuracy,
        "target_perplexity": cluster_perplexity(labels, targets.clusters).mean()}


def wav2vec_losses(model: Wav2Vec2, x: torch.Tensor, *, objective: Wav2VecObjective,
                   temperature: float, generator: torch.Generator,
                   targets: ClusterTargets | None = None, sampling_rate: float | None = None
                   ) -> LossOutput:
    """The objective's total loss and its parts (float32 scalars) for one batch ``x``
    ``[B, C, L]``, one pass of the network:

    - ``targets: quantizer``: ``L_m + alpha L_d + beta * feature penalty``
      (:func:`quantizer_terms`);
    - ``targets: clusters``: ``cluster_weight * L_c + beta * feature penalty``
      (:func:`cluster_terms` against ``targets``, the k-means of band powers of signals
      sampled at ``sampling_rate``);
    - ``targets: quantizer+clusters``: ``L_m + alpha L_d + beta * feature penalty +
      cluster_weight * L_c``.

    Under data parallelism each rank runs its shard of ``x`` with its own draws (masks, Gumbel
    noise, distractors: :func:`~contrastive_signals.training.ranks.rank_generator`); the loss
    terms are those of the global batch: the contrastive and cluster terms and the accuracies
    averaged over all ranks' masked steps, the diversity term on the codeword use averaged over
    all frames, the feature penalty over all features. Cross-sample distractors come from the
    rank's shard.
    """
    generator = rank_generator(generator)
    x = shard(x)
    out = model(x, mask_prob=objective.mask_prob, mask_span=objective.mask_span,
                temperature=temperature, generator=generator)
    penalty = mean_over_ranks(out["feature_penalty"])
    parts: dict[str, torch.Tensor] = {"feature_penalty": penalty.detach()}
    loss = None
    if "quantized" in out:
        contrastive, diversity, quantizer_parts = quantizer_terms(out, objective=objective,
                                                                  generator=generator)
        loss = (contrastive + objective.diversity_weight * diversity
                + objective.feature_penalty_weight * penalty)
        parts |= quantizer_parts
    if "logits" in out:
        if targets is None or sampling_rate is None:
            raise RuntimeError("cluster targets need fit_targets before training")
        cross_entropy, cluster_parts = cluster_terms(out, x, objective=objective,
                                                     targets=targets, sampling_rate=sampling_rate)
        weighted = objective.cluster_weight * cross_entropy
        loss = (weighted + objective.feature_penalty_weight * penalty if loss is None
                else loss + weighted)
        parts |= cluster_parts
    return LossOutput(loss, parts)


@torch.no_grad()
def evaluate_wav2vec(model: Wav2Vec2, batches: Iterable[torch.Tensor], *,
                     objective: Wav2VecObjective, seed: int,
                     losses: Callable[..., LossOutput] | None = None) -> dict[str, float]:
    """Mean ``loss`` and parts over ``batches`` (each ``[B, C, L]``) in eval mode (hard argmax
    codes, temperature ``gumbel_end``), masks and distractors drawn from a fresh generator
    seeded ``seed`` (the same every call, so epochs compare). Non-finite means are left out.
    ``losses(model, x, objective=, temperature=, generator=)`` defaults to
    :func:`wav2vec_losses` (quantiser targets)."""
    losses = losses or wav2vec_losses
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for x in batches:
        out = losses(model, x.to(device), objective=objective, temperature=objective.gumbel_end,
                     generator=generator)
        for key, value in {"loss": out.total, **out.parts}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        count += 1
    model.train(was_training)
    if count == 0:
        raise ValueError("no validation batch")
    return {key: value / count for key, value in sums.items() if math.isfinite(value)}


class Wav2VecMethod:
    """wav2vec 2.0 pretraining around a registered frame encoder (see the module docstring).

    Args:
        params: the method's settings.
        total_steps: training steps of the whole run (epochs x steps per epoch), over which the
            Gumbel temperature falls from ``gumbel_start`` to ``gumbel_end``.
    """

    name = "wav2vec"
    requires = Requirements(modalities=("signal",), outputs=("frames",))

    def __init__(self, params: Wav2VecParams, *, total_steps: int) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.params = params
        self.total_steps = total_steps
        self.steps = 0                                   # loss calls, skipped steps included
        self.temperature = params.objective.gumbel_start  # of the last step
        self._code_perplexity = 0.0                       # of the last step
        self._epoch_code_perplexity: list[float] = []     # of the epoch's finite steps
        self.targets: ClusterTargets | None = None        # with targets: clusters
        self.sampling_rate: float | None = None

    @property
    def clusters(self) -> bool:
        """Whether masked frames predict cluster targets (alone or beside the quantiser's)."""
        return "clusters" in self.params.objective.targets.split("+")

    @property
    def quantizer(self) -> bool:
        """Whether masked frames predict their quantised frames (wav2vec 2.0)."""
        return "quantizer" in self.params.objective.targets.split("+")

    # Every module enters every step's loss, whatever the targets (the quantiser's hard Gumbel
    # one-hot passes gradients to every codeword, its soft probabilities to the logits through
    # the diversity term), so DDP need not search the graph for unused parameters.
    uses_every_parameter = True

    def build(self, encoder: nn.Module, *, feature_dim: int, in_channels: int | None = None
              ) -> Wav2Vec2:
        """The network around ``encoder`` (``[B, C, L]`` -> ``[B, feature_dim, T]``; cluster
        targets need its ``in_channels``, one target group each); its own parameters are
        drawn from torch's global generator (use :meth:`build_seeded`)."""
        heads = {}
        if self.clusters:
            if not in_channels:
                raise ValueError("targets: clusters needs the encoder's in_channels")
            heads = {"cluster_groups": in_channels, "clusters": self.params.objective.clusters,
                     "cluster_temperature": self.params.objective.logit_temperature,
                     "quantizer": self.quantizer}
        return Wav2Vec2(encoder, feature_dim, **asdict(self.params.model), **heads)

    def build_seeded(self, architecture: str, config: dict, *, seed: int) -> Wav2Vec2:
        """The registered encoder ``architecture`` built with ``config``, then the method's
        modules, all from one stream seeded ``seed`` (encoder weights first), leaving the
        caller's random state alone."""
        entry = check_compatible(self.name, self.requires, architecture)
        encoder, state = build_model_with_rng_state(architecture, config, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(state)
            return self.build(encoder, feature_dim=entry.embedding_dim(config),
                              in_channels=config.get("in_channels"))

    def fit_targets(self, model: Wav2Vec2, sample: torch.Tensor, *, sampling_rate: float,
                    seed: int) -> list[float]:
        """With ``targets: clusters``: the k-means of the frames of ``sample`` ``[N, C, L]``
        (training sequences) per channel, kept as the method's state (checkpointed, and
        carried to every data-parallel rank with the method). Returns the clusters'
        perplexity per channel on the sample (1: one cluster used, ``clusters``: uniform);
        nothing to do with quantiser targets. Raises a ``ValueError`` naming
        ``cluster_bands`` for bands past the Nyquist frequency of ``sampling_rate``."""
        if not self.clusters:
            return []
        objective = self.params.objective
        check_bands(objective.cluster_bands, sampling_rate=sampling_rate, name="cluster_bands")
        was_training = model.training
        model.eval()  # only the frame count: leave batch-norm statistics untouched
        with torch.no_grad():
            frames = model.features(sample[:1].to(next(model.parameters()).device)).shape[1]
        model.train(was_training)
        features = frame_band_powers(sample, frames=frames, sampling_rate=sampling_rate,
                                     bands=objective.cluster_bands).flatten(0, 1)  # [N T, C, F]
        self.targets = ClusterTargets.fit(features, clusters=objective.clusters, seed=seed)
        self.sampling_rate = float(sampling_rate)
        return cluster_perplexity(self.targets.assign(features), objective.clusters).tolist()

    def _losses(self, model: Wav2Vec2, x: torch.Tensor, *, objective: Wav2VecObjective,
                temperature: float, generator: torch.Generator) -> LossOutput:
        """:func:`wav2vec_losses` of one batch with the method's cluster targets."""
        return wav2vec_losses(model, x, objective=objective, temperature=temperature,
                              generator=generator, targets=self.targets,
                              sampling_rate=self.sampling_rate)

    @staticmethod
    def batches(draw: Callable[[int, torch.Generator], torch.Tensor], *, batch_size: int,
                steps: int) -> BatchesFn:
        """fit's ``batches``: ``steps`` batches ``([B, C, L],)`` per epoch from
        ``draw(batch_size, generator)``."""
        def batches(epoch: int, generator: torch.Generator):
            for _ in range(steps):
                yield (draw(batch_size, generator),)

        return batches

    def loss(self, model: Wav2Vec2, batch: tuple[torch.Tensor], generator: torch.Generator
             ) -> LossOutput:
        """One training step's loss; advances the temperature schedule."""
        objective = self.params.objective
        self.temperature = gumbel_temperature(self.steps, total_steps=self.total_steps,
                                              start=objective.gumbel_start, end=objective.gumbel_end)
        self.steps += 1
        out = self._losses(model, batch[0], objective=objective, temperature=self.temperature,
                           generator=generator)
        if self.quantizer:
            self._code_perplexity = float(out.parts["code_perplexity"].detach())
        return out

    def on_step_end(self, model: nn.Module, step: int) -> None:
        self._epoch_code_perplexity.append(self._code_perplexity)

    def on_epoch_end(self, model: Wav2Vec2, epoch: int) -> dict[str, float]:
        """``{"temperature": of the epoch's last step}``; warns when the epoch's mean code
        perplexity per group is below ``collapse_perplexity`` (with the quantiser only)."""
        values, self._epoch_code_perplexity = self._epoch_code_perplexity, []
        if not self.quantizer:
            return {}
        code_ppl = sum(values) / len(values) if values else math.nan
        if code_ppl < self.params.collapse_perplexity:
            logger.warning("%s epoch %d: codebook collapse suspected (code perplexity %.2f per "
                           "group of %d entries); raise diversity_weight or gumbel_start",
                           self.name, epoch + 1, code_ppl, model.quantizer.entries)
        return {"temperature": self.temperature}

    def validation(self, batches: Sequence[torch.Tensor], *, seed: int) -> ValidateFn:
        """fit's ``validate``: :func:`evaluate_wav2vec` on fixed ``batches``, names ``val_*``."""
        def validate(model: Wav2Vec2) -> dict[str, float]:
            scores = evaluate_wav2vec(model, batches, objective=self.params.objective, seed=seed,
                                      losses=self._losses)
            return {f"val_{key}": value for key, value in scores.items()}

        return validate

    def export(self, model: Wav2Vec2, *, context: bool = False) -> nn.Module:
        """What a downstream model (the sleep stager) starts from: the feature encoder, or with
        ``context`` the feature encoder followed by the pretrained context network (a
        :class:`~contrastive_signals.models.wav2vec.ContextualFrameEncoder`; without the mask
        embedding, quantiser and final projection, which only the pretraining task uses)."""
        if not context:
            return model.feature_encoder
        with torch.random.fork_rng(devices=[]):  # its initial draws are overwritten anyway
            frame_context = FrameContext(model.feature_norm.normalized_shape[0],
                                         **asdict(self.params.model.frame_context()))
        frame_context.load_state_dict(frame_context_state(model))
        return ContextualFrameEncoder(model.feature_encoder, frame_context.to(
            next(model.parameters()).device))

    def state_dict(self) -> dict[str, Any]:
        """The schedule's position and the cluster targets (for a checkpoint)."""
        state: dict[str, Any] = {"steps": self.steps, "temperature": self.temperature}
        if self.targets is not None:
            state["cluster_targets"] = self.targets.state_dict()
            state["sampling_rate"] = self.sampling_rate
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.temperature = int(state["steps"]), float(state["temperature"])
        if "cluster_targets" in state:
            self.targets = ClusterTargets.from_state(state["cluster_targets"])
            self.sampling_rate = float(state["sampling_rate"])


@dataclass(frozen=True)
class Wav2VecPretraining:
    """A pretraining run on recordings of 30-s epochs (the sleep epochs dataset)."""

    segment_epochs: int = 4      # consecutive epochs per pretraining sequence
    batch_size: int = 16         # sequences per step
    val_batches: int = 4         # fixed validation batches (validation recordings), 0: none
    steps_per_epoch: int = 50
    num_threads: int | None = 1
    method: Wav2VecParams = field(default_factory=Wav2VecParams)
    fit: FitConfig = field(default_factory=lambda: FitConfig(
        epochs=8, learning_rate=1e-3, grad_clip_norm=5.0, max_nonfinite_steps=10))

    def __post_init__(self) -> None:
        if min(self.segment_epochs, self.batch_size, self.steps_per_epoch) < 1 or self.val_batches < 0:
            raise ValueError("segment_epochs, batch_size and steps_per_epoch must be >= 1, "
                             "val_batches >= 0")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")
        check_fit(self.fit)


def pretrain_on_recordings(train: list[dict[str, Any]], val: list[dict[str, Any]], *,
                           params: Wav2VecPretraining, architecture: str,
                           encoder_config: dict[str, Any], path: str = "pretraining",
                           export_context: bool = False, sampling_rate: float | None = None
                           ) -> tuple[nn.Module, dict[str, list[float]]]:
    """wav2vec on sequences of ``segment_epochs`` consecutive epochs drawn from the training
    recordings (labels unused), monitored on ``val_batches`` fixed batches of the validation
    recordings (if any); ``path`` names the parameters in errors. Cluster targets
    (``method.objective.targets: clusters``) need the recordings' ``sampling_rate`` and are
    fitted on ``cluster_fit_batches`` training batches drawn with seed ``fit.seed + 1``.

    Returns:
        the trained feature encoder (``architecture`` with ``encoder_config``; with
        ``export_context`` followed by the context network, see :meth:`Wav2VecMethod.export`)
        and the per-epoch history: ``train_loss`` and the loss parts, ``lr``,
        ``nonfinite_steps``, ``temperature`` and their ``val_*`` counterparts.
    """
    what = f"{path}.segment_epochs"
    draw = segment_sampler(train, params.segment_epochs, what=what)
    method = Wav2VecMethod(params.method, total_steps=params.fit.epochs * params.steps_per_epoch)
    seed_everything(params.fit.seed)  # dropout draws from torch's global stream
    model = method.build_seeded(architecture, encoder_config, seed=params.fit.seed)
    if method.clusters:
        if sampling_rate is None:
            raise ValueError(f"{path}.method.objective.targets: "
                             f"{params.method.objective.targets} needs the recordings' "
                             "sampling rate (pass sampling_rate=)")
        fixed = torch.Generator().manual_seed(params.fit.seed + 1)
        sample = torch.cat([draw(params.batch_size, fixed)
                            for _ in range(params.method.objective.cluster_fit_batches)])
        try:
            usage = method.fit_targets(model, sample, sampling_rate=sampling_rate,
                                       seed=params.fit.seed)
        except ValueError as error:
            raise ValueError(f"{path}.method.objective: {error}") from error
        logger.info("%s: cluster targets from %d sequences; cluster perplexity per channel %s "
                    "of %d", path, len(sample), [round(u, 1) for u in usage],
                    params.method.objective.clusters)
    validate = None
    if val and params.val_batches:
        val_draw = segment_sampler(val, params.segment_epochs, what=what)
        fixed = torch.Generator().manual_seed(params.fit.seed)
        validate = method.validation([val_draw(params.batch_size, fixed)
                                      for _ in range(params.val_batches)], seed=params.fit.seed)
    batches = method.batches(draw, batch_size=params.batch_size, steps=params.steps_per_epoch)
    with torch_threads(params.num_threads):
        result = fit(model, loss_fn=method.loss, batches=batches, validate=validate, hooks=method,
                     config=replace(params.fit, name=method.name))
    return method.export(result.model, context=export_context), result.history
