"""The label-efficiency protocol of the sleep stager: for each share of the labelled training
recordings and each seed, the stager trained with its epoch CNN from a pretrained encoder
(``w2v``) and from scratch (``scratch``) on the same seeded subset, then evaluated on the test
recordings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from contrastive_signals.data.splits import label_subset
from contrastive_signals.methods.sleep_stager import (
    EncoderFineTuning,
    SleepEvaluationParams,
    SleepStagerParams,
    stage_recordings,
    train_sleep_stager,
)
from contrastive_signals.metrics.label_efficiency import fraction_name
from contrastive_signals.metrics.sleep import staged_recordings_metrics
from contrastive_signals.models.registry import from_bundle

logger = logging.getLogger(__name__)

INITS = ("w2v", "scratch")
SUBSETS = ("per_seed", "fixed")


@dataclass(frozen=True)
class LabelEfficiencyParams:
    fractions: tuple[float, ...] = (0.1, 1.0)   # shares of the labelled training recordings
    epochs: tuple[int, ...] = (20, 5)           # fine-tuning epochs per fraction
    seeds: tuple[int, ...] = (0, 1, 2)          # model seed and recording subset per run
    subset_seed: int = 0
    # per_seed: each seed draws its own recordings; fixed: every seed gets the first seed's
    # (the spread over seeds is then that of training alone, as with wav2vec 2.0's fixed
    # labelled subsets)
    subset: str = "per_seed"
    fine_tuning: EncoderFineTuning = field(default_factory=EncoderFineTuning)  # w2v runs only
    training: SleepStagerParams = field(default_factory=SleepStagerParams)
    evaluation: SleepEvaluationParams = field(default_factory=SleepEvaluationParams)

    def __post_init__(self) -> None:
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")
        if len(self.epochs) != len(self.fractions) or any(e < 1 for e in self.epochs):
            raise ValueError(f"epochs needs one value >= 1 per fraction, got {self.epochs} for "
                             f"{self.fractions}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds}")
        if self.subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got '{self.subset}'")


def label_efficiency_runs(train: list[dict[str, Any]], val: list[dict[str, Any]],
                          test: list[dict[str, Any]], *, stages: list[str],
                          params: LabelEfficiencyParams, pretrained: nn.Module,
                          path: str) -> list[dict[str, Any]]:
    """Every (fraction, seed, init) run, in that order (``path``: where ``params`` sit, for
    errors).

    Returns:
        ``[{"fraction", "init", "seed", "recordings": [names], "metrics": {cer, macro_f1,
        epoch_acc, kappa, transitions_abs_err}, "epochs_trained"}]``.
    """
    runs = []
    for fraction, n_epochs in zip(params.fractions, params.epochs, strict=True):
        for seed in params.seeds:
            drawn = seed if params.subset == "per_seed" else params.seeds[0]
            subset = [train[i] for i in label_subset(len(train), fraction=fraction, seed=drawn,
                                                     subset_seed=params.subset_seed)]
            training = replace(params.training, fit=replace(params.training.fit, seed=seed,
                                                            epochs=n_epochs))
            for init in INITS:
                name = f"sleep_{init}_{fraction_name(fraction)}_seed{seed}"
                bundle, history = train_sleep_stager(
                    subset, val, stages=stages, params=training, name=name,
                    encoder=pretrained if init == "w2v" else None,
                    fine_tuning=params.fine_tuning, path=f"{path}.training")
                staged = stage_recordings(from_bundle(bundle), test, window=training.window,
                                          params=params.evaluation)
                metrics = staged_recordings_metrics(staged)
                logger.info("%s (%d recordings): %s", name, len(subset),
                            " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
                runs.append({"fraction": fraction, "init": init, "seed": seed,
                             "recordings": [r["name"] for r in subset], "metrics": metrics,
                             "epochs_trained": len(history["train_loss"])})
    return runs
