"""Declarative feature steps: a list of ``{name: ..., <arguments>}`` dicts run in order.

A pipeline's parameters declare the steps, e.g. in YAML::

    feature_steps:
      - {name: bandpass, low_hz: 0.5, high_hz: 30}
      - {name: resample, to_hz: 100}
      - {name: derivative_channel}

:func:`validate_feature_steps` checks the whole list before anything runs, and
:func:`apply_feature_steps` runs it while threading the sampling rate through:
steps whose function takes ``sampling_rate`` (or ``from_hz`` for ``resample``) get
the current rate injected, and ``resample`` sets the rate for the steps after it.

``fft_magnitude``, ``spectrogram`` and ``wavelet`` leave the time domain (their
outputs are ``[N, C, F]``, ``[N, C, F, T]`` and ``[N, C, sum L_k]``), so they may only
be the last step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from contrastive_signals.signal import filters, force_curves, spectral, wavelets

__all__ = [
    "FEATURE_STEPS",
    "INJECTED_ARGUMENTS",
    "TERMINAL_STEPS",
    "apply_feature_steps",
    "apply_feature_steps_to_dataset",
    "validate_feature_steps",
]


def fft_magnitude(x: np.ndarray, *, sampling_rate: float, one_sided: bool = True) -> np.ndarray:
    """``[N, C, L]`` -> ``[N, C, F]`` DFT magnitude (see :func:`spectral.fft_features`)."""
    return spectral.fft_features(x, sampling_rate=sampling_rate, one_sided=one_sided)["magnitude"]


def spectrogram_power(
    x: np.ndarray,
    *,
    sampling_rate: float,
    window: str = "hann",
    nperseg: int = 256,
    noverlap: int | None = None,
    log: bool = False,
) -> np.ndarray:
    """``[N, C, L]`` -> ``[N, C, F, T]`` power spectral density (see :func:`spectral.spectrogram`)."""
    return spectral.spectrogram(
        x,
        sampling_rate=sampling_rate,
        window=window,
        nperseg=nperseg,
        noverlap=noverlap,
        log=log,
    )["power"]


FEATURE_STEPS: dict[str, Callable[..., np.ndarray]] = {
    "fft_magnitude": fft_magnitude,
    "spectrogram": spectrogram_power,
    "wavelet": wavelets.wavelet_features,
    "derivative_channel": filters.add_derivative_channel,
    "detrend": filters.detrend_polynomial,
    "bandpass": filters.bandpass,
    "lowpass": filters.lowpass,
    "highpass": filters.highpass,
    "notch": filters.notch,
    "normalize": filters.normalize,
    "resample": filters.resample,
    # AFM force curves (contact region first, far region last): see signal/force_curves.py
    "baseline": force_curves.subtract_baseline,
    "flatten": force_curves.flatten,
    "align_contact": force_curves.align_contact,
    "resample_length": force_curves.resample_length,
    "scale": force_curves.scale,
    "clip": force_curves.clip,
}
"""Step name -> function ``f(x [N, C, L], **arguments) -> array``."""

TERMINAL_STEPS = frozenset({"fft_magnitude", "spectrogram", "wavelet"})
"""Steps whose output is no longer a time series; allowed only as the last step."""

INJECTED_ARGUMENTS = frozenset({"sampling_rate", "from_hz"})
"""Arguments filled in from the current sampling rate, never given in a step."""


def _accepted_arguments(fn: Callable[..., Any]) -> tuple[list[str], list[str]]:
    """(all, required) keyword arguments a step accepts, without ``x`` and injected ones."""
    params = [
        p
        for p in list(inspect.signature(fn).parameters.values())[1:]  # the first one is x
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in INJECTED_ARGUMENTS
    ]
    names = [p.name for p in params]
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    return names, required


def validate_feature_steps(steps: Sequence[Mapping[str, Any]]) -> None:
    """Check a step list without running it.

    Every step must be a mapping with a known ``name``, arguments that its function
    accepts (all required ones present, none of the injected ``sampling_rate`` /
    ``from_hz``), and a shape-changing step may only come last.

    Args:
        steps: e.g. ``[{"name": "bandpass", "low_hz": 0.5, "high_hz": 30}, ...]``.

    Raises:
        ValueError: naming the step index and listing the valid names or arguments.
    """
    if isinstance(steps, Mapping | str) or not isinstance(steps, Sequence):
        raise ValueError(f"feature steps must be a list of mappings; got {type(steps).__name__}")
    for i, step in enumerate(steps):
        if not isinstance(step, Mapping) or "name" not in step:
            raise ValueError(f"feature step {i} must be a mapping with a 'name' key; got {step!r}")
        name = step["name"]
        if name not in FEATURE_STEPS:
            raise ValueError(
                f"feature step {i}: unknown name {name!r}; valid names are {sorted(FEATURE_STEPS)}"
            )
        accepted, required = _accepted_arguments(FEATURE_STEPS[name])
        given = [k for k in step if k != "name"]
        injected = sorted(set(given) & INJECTED_ARGUMENTS)
        if injected:
            raise ValueError(
                f"feature step {i} ({name}): {injected} must not be given; the sampling "
                f"rate is passed through the steps automatically"
            )
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise ValueError(
                f"feature step {i} ({name}): unknown argument(s) {unknown}; valid arguments "
                f"are {accepted}"
            )
        missing = [k for k in required if k not in step]
        if missing:
            raise ValueError(
                f"feature step {i} ({name}): missing required argument(s) {missing}; valid "
                f"arguments are {accepted}"
            )
        if name in TERMINAL_STEPS and i != len(steps) - 1:
            raise ValueError(
                f"feature step {i} ({name}) changes the array away from [N, C, L] and must "
                f"be the last step; it is followed by {len(steps) - 1 - i} more"
            )


def apply_feature_steps(
    x: np.ndarray, steps: Sequence[Mapping[str, Any]], *, sampling_rate: float
) -> tuple[np.ndarray, float]:
    """Run validated feature steps in order.

    Args:
        x: ``[N, C, L]`` signals sampled at ``sampling_rate``; not modified.
        steps: step list (see :func:`validate_feature_steps`); an empty list returns
            a copy of ``x``.
        sampling_rate: samples per second of ``x``.

    Returns:
        ``(features, rate)``: the last step's output (``[N, C', L']`` for time-domain
        steps; see the module docstring for the terminal ones) and the sampling rate
        of the last time-domain signal, i.e. after any ``resample``.

    Raises:
        ValueError: from validation, or from a step (e.g. a cutoff above the
            Nyquist frequency at that point), prefixed with the step index and name.
    """
    validate_feature_steps(steps)
    if not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be > 0; got {sampling_rate}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape [N, C, L]; got shape {x.shape}")
    rate = float(sampling_rate)
    out = x.copy()
    for i, step in enumerate(steps):
        name = step["name"]
        fn = FEATURE_STEPS[name]
        kwargs = {k: v for k, v in step.items() if k != "name"}
        params = inspect.signature(fn).parameters
        if "sampling_rate" in params:
            kwargs["sampling_rate"] = rate
        if "from_hz" in params:
            kwargs["from_hz"] = rate
        try:
            out = fn(out, **kwargs)
        except ValueError as err:
            raise ValueError(f"feature step {i} ({name}) at {rate:g} Hz: {err}") from err
        if name == "resample":
            rate = float(kwargs["to_hz"])
    return out, rate


def _collect_signal_arrays(data: Any, key: str, found: list[Any]) -> None:
    """Append every value stored under ``key`` in nested dicts / lists, depth first."""
    if isinstance(data, Mapping):
        for name, value in data.items():
            if name == key:
                found.append(value)
            else:
                _collect_signal_arrays(value, key, found)
    elif isinstance(data, list | tuple):
        for value in data:
            _collect_signal_arrays(value, key, found)


def _replace_signal_arrays(data: Any, key: str, replacements: list[Any]) -> Any:
    """A copy of ``data`` whose ``key`` values are taken in order from ``replacements``
    (same traversal as :func:`_collect_signal_arrays`); other leaves are shared, not copied."""
    if isinstance(data, Mapping):
        return {name: replacements.pop(0) if name == key
                else _replace_signal_arrays(value, key, replacements)
                for name, value in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_replace_signal_arrays(value, key, replacements) for value in data)
    return data


def apply_feature_steps_to_dataset(
    data: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    *,
    signal_key: str,
    sampling_rate: float,
) -> tuple[dict[str, Any], float]:
    """Run a step list over every signal array of a nested dataset in one batch.

    A signal dataset is any nesting of dicts and lists whose arrays under ``signal_key``
    share their trailing ``[C, L]`` shape: a flat ``{"signals": [N, C, L], ...}``, splits
    ``{"train": {"signals": ...}, "test": ...}``, or recordings
    ``{"recordings": [{"epochs": [E_i, C, L], ...}, ...]}``. All arrays are concatenated
    into one ``[sum N_i, C, L]`` batch (so each step runs once, vectorised), then split
    back into the same structure; every other value (labels, names) passes through.

    Args:
        data: the dataset; not modified. Arrays may be numpy arrays or torch tensors.
        steps: the step list (see :func:`validate_feature_steps`).
        signal_key: the key that names signal arrays, e.g. ``"signals"`` or ``"epochs"``.
        sampling_rate: samples per second of the signals.

    Returns:
        ``(features, rate)``: the same structure with each signal array replaced by its
        features (the input's array type, and its dtype when floating), and the sampling
        rate after the steps.

    Raises:
        ValueError: no array under ``signal_key``, arrays whose trailing shapes differ, or
            a step's own error.
    """
    validate_feature_steps(steps)
    arrays: list[Any] = []
    _collect_signal_arrays(data, signal_key, arrays)
    if not arrays:
        raise ValueError(f"no signal arrays under the key {signal_key!r}; the dataset's "
                         f"top-level keys are {sorted(data)}")
    numpy_arrays = [a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
                    for a in arrays]
    shapes = {a.shape[1:] for a in numpy_arrays}
    if any(a.ndim != 3 for a in numpy_arrays) or len(shapes) != 1:
        raise ValueError(f"signal arrays under {signal_key!r} must all be [N, C, L] with the "
                         f"same C and L; got shapes {sorted({a.shape for a in numpy_arrays})}")
    batch = np.concatenate(numpy_arrays, axis=0)
    features, rate = apply_feature_steps(batch, steps, sampling_rate=sampling_rate)
    pieces = np.split(features, np.cumsum([len(a) for a in numpy_arrays])[:-1], axis=0)
    restored = [_like(piece, original) for piece, original in zip(pieces, arrays, strict=True)]
    return _replace_signal_arrays(data, signal_key, restored), rate


def _like(values: np.ndarray, original: Any) -> Any:
    """``values`` as the type of ``original`` (torch tensor or numpy array), keeping a
    floating dtype such as float32; a contiguous copy so pieces do not share one buffer."""
    if isinstance(original, torch.Tensor):
        tensor = torch.from_numpy(np.ascontiguousarray(values))
        return tensor.to(original.dtype) if original.is_floating_point() else tensor
    dtype = original.dtype if np.issubdtype(original.dtype, np.floating) else values.dtype
    return np.ascontiguousarray(values, dtype=dtype)
