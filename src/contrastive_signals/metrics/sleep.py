"""Sleep-staging metrics: per-epoch agreement, stage-sequence CER and transition counts.

Names (without the ``sleep.`` prefix the pipeline adds):

- ``epoch_acc``: share of test epochs whose predicted stage is right;
- ``macro_f1``: F1 averaged over the stages present in truth or prediction;
- ``kappa``: Cohen's kappa of predicted against true stages (chance-corrected agreement);
- ``cer``: corpus character error rate of the CTC head's greedy decoding of each
  non-overlapping test window against the window's collapsed true stage sequence
  (total edits / total true sequence length over all test windows);
- ``transitions_abs_err``: mean over test recordings of
  ``|predicted transitions - true transitions|``, transitions counted between consecutive
  epochs of the per-epoch predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from contrastive_signals.metrics.cer import corpus_cer

logger = logging.getLogger(__name__)


def count_transitions(labels: Sequence[int] | np.ndarray) -> int:
    """Number of changes of stage between consecutive epochs."""
    values = np.asarray(labels)
    return int(np.count_nonzero(values[1:] != values[:-1])) if len(values) > 1 else 0


def sleep_staging_metrics(
    true_labels: Sequence[np.ndarray],
    predicted_labels: Sequence[np.ndarray],
    window_references: Sequence[Sequence[int]],
    window_hypotheses: Sequence[Sequence[int]],
) -> dict[str, float]:
    """The five sleep figures over the test recordings.

    Args:
        true_labels, predicted_labels: per recording, ``[N_r]`` stage indices of its epochs.
        window_references: per test window, its collapsed true stage sequence.
        window_hypotheses: per test window, the decoded CTC stage sequence.

    Returns:
        ``{"epoch_acc", "macro_f1", "kappa", "cer", "transitions_abs_err"}``.
    """
    if len(true_labels) != len(predicted_labels) or not true_labels:
        raise ValueError(f"need one prediction per recording; got {len(true_labels)} true and "
                         f"{len(predicted_labels)} predicted")
    y_true = np.concatenate([np.asarray(t) for t in true_labels])
    y_pred = np.concatenate([np.asarray(p) for p in predicted_labels])
    if y_true.shape != y_pred.shape:
        raise ValueError(f"true and predicted epochs differ: {y_true.shape} vs {y_pred.shape}")
    transitions = [abs(count_transitions(p) - count_transitions(t))
                   for t, p in zip(true_labels, predicted_labels, strict=True)]
    # Kappa is undefined (NaN) when both raters use one single class; agreement is then perfect.
    kappa = cohen_kappa_score(y_true, y_pred) if len(np.union1d(y_true, y_pred)) > 1 else 1.0
    return {
        "epoch_acc": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "kappa": float(kappa),
        "cer": float(corpus_cer(window_references, window_hypotheses)),
        "transitions_abs_err": float(np.mean(transitions)),
    }


def staged_recordings_metrics(recordings: Sequence[dict[str, Any]]) -> dict[str, float]:
    """:func:`sleep_staging_metrics` of staged recordings (``{"name", "true": [E],
    "predicted": [E], "window_references", "window_hypotheses"}`` each, tensors), logging each
    recording's true and predicted number of transitions."""
    if not recordings:
        raise ValueError("no test recording to evaluate")
    metrics = sleep_staging_metrics(
        [r["true"].numpy() for r in recordings], [r["predicted"].numpy() for r in recordings],
        [w for r in recordings for w in r["window_references"]],
        [w for r in recordings for w in r["window_hypotheses"]])
    for r in recordings:
        logger.info("sleep: %s transitions true=%d predicted=%d", r["name"],
                    count_transitions(r["true"].numpy()), count_transitions(r["predicted"].numpy()))
    return metrics
