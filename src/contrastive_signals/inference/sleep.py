"""Sleep: per-epoch stages of a new night (no hypnogram needed).

The *sleep inference bundle* is ``{"task": "sleep", "stager": model bundle (with its
``window`` and ``stages``), "channels": [C names], "ingestion": {"low_hz", "high_hz",
"filter_order", "target_hz", "normalize", "clip"}, "evaluation": {"stride", "batch_size"},
"epoch_seconds": 30.0}``.

A night arrives as an array ``[C, L]`` with its sampling rate (:func:`stage_night`) or as
the bytes of an EDF/EDF+ file (:func:`stage_edf_bytes`; base64 text:
:func:`decode_edf_base64`), read by the pipeline's own reader ``read_psg``.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from contrastive_signals.data.sleep_edf import (
    EPOCH_SECONDS,
    SleepEdfError,
    read_psg,
    recording_epochs,
)
from contrastive_signals.inference.bundles import InputError, require_task
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.models.sleep import predict_recording

INGESTION_KEYS = ("low_hz", "high_hz", "filter_order", "target_hz", "normalize", "clip")


def sleep_bundle(stager: dict[str, Any], *, channels: list[str], ingestion: dict[str, Any],
                 evaluation: dict[str, Any]) -> dict[str, Any]:
    """The bundle from the trained stager and the run's ``sleep.ingestion`` /
    ``sleep.evaluation`` parameters (only the keys inference needs are kept)."""
    return {"task": "sleep", "stager": stager, "channels": [str(c) for c in channels],
            "ingestion": {key: ingestion[key] for key in INGESTION_KEYS},
            "evaluation": {"stride": int(evaluation["stride"]),
                           "batch_size": int(evaluation["batch_size"])},
            "epoch_seconds": EPOCH_SECONDS}


def night_epochs(bundle: dict[str, Any], signals: np.ndarray, sampling_rate: float, *,
                 source: str = "request") -> np.ndarray:
    """The training feature steps (band-pass, resample, normalise, 30-s epochs:
    :func:`recording_epochs`) on one night ``[C, L]`` at ``sampling_rate``.

    Returns:
        ``[E, C, 30 * target_hz]`` float32, ``E = L // (30 * sampling_rate)``.

    Raises:
        InputError: naming ``source`` for another channel count, a night shorter than one
            epoch, non-finite values or a bad sampling rate.
    """
    array = np.asarray(signals)
    channels = bundle["channels"]
    if array.dtype.kind not in "fiu":
        raise InputError(f"{source}: signals must be numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[0] != len(channels):
        raise InputError(f"{source}: expected signals of shape [{len(channels)}, L] (channels "
                         f"{channels}), got {list(array.shape)}")
    if not (np.isfinite(sampling_rate) and sampling_rate > 0):
        raise InputError(f"{source}: sampling_rate must be > 0, got {sampling_rate}")
    config = bundle["ingestion"]
    if sampling_rate <= 2 * config["high_hz"]:
        raise InputError(f"{source}: sampling_rate {sampling_rate} Hz is too low for the "
                         f"model's band-pass up to {config['high_hz']} Hz")
    samples = round(bundle["epoch_seconds"] * sampling_rate)
    n_epochs = array.shape[1] // samples
    if n_epochs < 1:
        raise InputError(f"{source}: the night lasts {array.shape[1] / sampling_rate:.1f} s, "
                         f"shorter than one {bundle['epoch_seconds']:.0f}-s epoch")
    if not np.isfinite(array).all():
        raise InputError(f"{source}: signals hold NaN or infinite values")
    recording = {"signals": array.astype(np.float32), "sampling_rate": float(sampling_rate),
                 "labels": np.zeros(n_epochs, dtype=np.int64)}
    return recording_epochs(recording, epoch_seconds=bundle["epoch_seconds"], **config)["epochs"]


def stage_epochs(bundle: dict[str, Any], epochs: np.ndarray | torch.Tensor, *,
                 model: nn.Module | None = None) -> np.ndarray:
    """Stage probabilities ``[E, K]`` of one night's preprocessed epochs ``[E, C, L]``, as the
    evaluation computes them (overlapping windows averaged: ``predict_recording``)."""
    model = model if model is not None else from_bundle(bundle["stager"])
    evaluation = bundle["evaluation"]
    with torch.no_grad():
        probs, _ = predict_recording(model, torch.as_tensor(epochs),
                                     window=int(bundle["stager"]["window"]),
                                     stride=evaluation["stride"],
                                     batch_size=evaluation["batch_size"], ctc=False)
    return probs.numpy().astype(np.float32)


def stage_night(bundle: dict[str, Any], signals: np.ndarray, sampling_rate: float, *,
                model: nn.Module | None = None, source: str = "request") -> dict[str, Any]:
    """Per-epoch stages of one night ``[C, L]`` (channels in ``bundle["channels"]`` order).

    Returns:
        ``{"onset": [E] float64 seconds, "stage": [E] int64, "probabilities": [E, K]
        float32, "stages": stage names}``.
    """
    require_task(bundle, "sleep")
    epochs = night_epochs(bundle, signals, sampling_rate, source=source)
    probs = stage_epochs(bundle, epochs, model=model)
    onset = np.arange(len(probs), dtype=np.float64) * bundle["epoch_seconds"]
    return {"onset": onset, "stage": probs.argmax(1).astype(np.int64), "probabilities": probs,
            "stages": list(bundle["stager"]["stages"])}


def stages_table(out: dict[str, Any]) -> pd.DataFrame:
    """:func:`stage_night`'s output as one row per epoch: ``onset`` (s), ``stage`` (name) and
    ``p_<stage>`` per stage (the inference pipeline's CSV columns)."""
    stages = list(out["stages"])
    table = pd.DataFrame({"onset": out["onset"], "stage": [stages[s] for s in out["stage"]]})
    for j, name in enumerate(stages):
        table[f"p_{name}"] = out["probabilities"][:, j]
    return table


def decode_edf_base64(text: Any, *, source: str = "request") -> bytes:
    """The bytes of a base64 string (standard alphabet; whitespace and line breaks allowed).

    Raises:
        InputError: naming ``source`` when ``text`` is no string or not valid base64.
    """
    if not isinstance(text, str):
        raise InputError(f"{source}: expected the EDF file's bytes as a base64 string, got "
                         f"{type(text).__name__}")
    try:
        data = _strict_b64decode(text)
    except (binascii.Error, ValueError) as error:
        raise InputError(f"{source}: not valid base64 ({error})") from None
    if not data:
        raise InputError(f"{source}: empty (no EDF bytes)")
    return data


def _strict_b64decode(text: str) -> bytes:
    """Strict base64 (no stray characters); whitespace (line breaks of ``base64`` tools) is
    removed only when the text holds some (a 30-MB night is not copied twice)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        stripped = "".join(text.split())
        if stripped == text:
            raise
        return base64.b64decode(stripped, validate=True)


def read_psg_bytes(data: bytes, channels: list[str], *, source: str = "request"
                   ) -> tuple[np.ndarray, float]:
    """``read_psg`` (the inference pipeline's reader) on the bytes of one EDF/EDF+ file,
    through a temporary file (MNE reads paths).

    Returns:
        ``(signals [C, L] float32, sampling rate)`` of ``channels`` in that order.

    Raises:
        InputError: naming ``source``: not an EDF file, truncated, a missing channel (with
            the file's own list), or MNE cannot read it.
    """
    with tempfile.TemporaryDirectory(prefix="sleep-edf-") as folder:
        path = Path(folder) / "night.edf"
        path.write_bytes(data)
        try:
            return read_psg(path, channels=channels)
        except SleepEdfError as error:
            raise InputError(f"{source}: {error.problems[0][1]}") from None


def stage_edf_bytes(bundle: dict[str, Any], data: bytes, *, model: nn.Module | None = None,
                    source: str = "request") -> dict[str, Any]:
    """:func:`stage_night` on one EDF/EDF+ night given as its file's bytes (the sampling rate
    is the file's)."""
    require_task(bundle, "sleep")
    signals, rate = read_psg_bytes(data, bundle["channels"], source=source)
    return stage_night(bundle, signals, rate, model=model, source=source)
