"""Time series: embeddings and classes of new series from one UCR/UEA set's trained encoder.

The steps are the ``timeseries`` pipeline's, called, not copied: the series are padded to the
set's length (:func:`~contrastive_signals.data.ucr.pad_series`), z-scored with the training
split's channel statistics when the training run z-scored them
(:func:`~contrastive_signals.data.ucr.apply_channel_statistics`), encoded and max-pooled as
the evaluation does (:func:`~contrastive_signals.models.ts_encoders.encode_splits`), then
classified by the evaluation's two read-outs fitted on the training embeddings: TS2Vec's SVM
(:func:`~contrastive_signals.metrics.svm_protocol.fit_svm_protocol`, its chosen ``C`` kept)
and the linear probe (:func:`~contrastive_signals.metrics.probes.fit_linear_probe`, which
gives probabilities).

The *timeseries inference bundle* holds every set of a training run: ``{"task":
"timeseries", "method", "datasets": {name: part}}``, each *part* ``{"dataset", "method",
"encoder": series model bundle, "length": T, "channels": C, "equal_length": bool, "pooling",
"standardisation": {"mean": [C], "std": [C]} float64 tensors or None, "classes": [K str],
"train_embeddings": [N, D] float32, "train_labels": [N] int64, "svm": {"C", "max_iter"},
"probe_c": float}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from contrastive_signals.data.ucr import apply_channel_statistics, pad_series
from contrastive_signals.inference.bundles import InputError, require_task
from contrastive_signals.metrics.probes import fit_linear_probe
from contrastive_signals.metrics.svm_protocol import fit_svm_protocol, svm_with
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.models.ts_encoders import encode_splits


def timeseries_bundle(method: str, parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The bundle of a run's sets, ``parts`` from :func:`dataset_part`."""
    if not parts:
        raise ValueError("a timeseries inference bundle needs at least one set")
    return {"task": "timeseries", "method": str(method), "datasets": dict(parts)}


def dataset_part(dataset: str, method: str, encoder: dict[str, Any],
                 data: dict[str, Any], *, pooling: str, probe_c: float) -> dict[str, Any]:
    """The part of ``dataset``'s ``method`` encoder from the pipeline's prepared set ``data``
    (:func:`~contrastive_signals.data.ucr.load_ucr_dataset`'s keys, arrays or tensors): the
    training embeddings as the evaluation computes them, and the SVM's ``C`` as its grid
    search picks it."""
    x_train, mask_train = (torch.as_tensor(np.asarray(data[k])) for k in ("x_train", "mask_train"))
    mask_test = np.asarray(data["mask_test"])
    model = from_bundle(encoder, modality="series")
    (train,) = encode_splits(model, {"x_train": x_train, "mask_train": mask_train}, ("train",),
                             pooling=pooling)
    labels = np.asarray(data["y_train"], dtype=np.int64)
    svm = fit_svm_protocol(train.numpy(), labels)
    statistics = data.get("standardisation")
    return {"dataset": str(dataset), "method": str(method),
            "encoder": encoder, "length": int(x_train.shape[1]),
            "channels": int(x_train.shape[2]),
            "equal_length": bool(np.asarray(mask_train).all() and mask_test.all()),
            "pooling": str(pooling),
            "standardisation": None if statistics is None else {
                key: torch.as_tensor(np.asarray(statistics[key]), dtype=torch.float64)
                for key in ("mean", "std")},
            "classes": [str(c) for c in data["classes"]],
            "train_embeddings": train.float().contiguous(),
            "train_labels": torch.from_numpy(labels),
            "svm": {"C": float(svm.C), "max_iter": int(svm.max_iter)},
            "probe_c": float(probe_c)}


def bundle_part(bundle: dict[str, Any], dataset: str, *, source: str = "request"
                ) -> dict[str, Any]:
    """The part of ``dataset`` in a bundle.

    Raises:
        InputError: naming ``source`` and the bundle's sets when it has no such set.
    """
    require_task(bundle, "timeseries")
    if dataset not in bundle["datasets"]:
        raise InputError(f"{source}: this model was trained on {sorted(bundle['datasets'])}, "
                         f"not on {dataset!r}")
    return bundle["datasets"][dataset]


class SeriesClassifiers:
    """The encoder and the two read-outs of one set's part (:func:`bundle_part`), built once
    (the SVM refitted with the training run's ``C``, the probe refitted: both
    deterministic)."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.model = from_bundle(bundle["encoder"], modality="series")
        train = bundle["train_embeddings"].numpy()
        labels = bundle["train_labels"].numpy()
        svm = bundle["svm"]
        self.svm = svm_with(svm["C"], max_iter=svm["max_iter"]).fit(train, labels)
        self.probe = fit_linear_probe(train, labels, c=bundle["probe_c"])


def series_arrays(bundle: dict[str, Any], series: list[np.ndarray], *, source: str = "request"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """New series ``[C, T_i]`` (as the reader gives them) and a set's part -> the evaluation's
    input: ``x``
    ``[N, T, C]`` float32 padded to the set's length ``T`` and z-scored as in training, and
    the mask ``[N, T]``.

    Raises:
        InputError: naming ``source`` for no series, another channel count, a length other
            than ``T`` (equal-length sets) or above ``T``, non-finite values.
    """
    channels, length = bundle["channels"], bundle["length"]
    if not series:
        raise InputError(f"{source}: no series")
    for i, s in enumerate(series, start=1):
        if s.ndim != 2 or s.shape[0] != channels:
            raise InputError(f"{source}: series {i} has {s.shape[0] if s.ndim == 2 else '?'} "
                             f"channel(s); the {bundle['dataset']} model reads {channels}")
        fits = s.shape[1] == length if bundle["equal_length"] else 1 <= s.shape[1] <= length
        if not fits:
            wanted = (f"exactly {length}" if bundle["equal_length"]
                      else f"between 1 and {length}")
            raise InputError(f"{source}: series {i} has {s.shape[1]} steps; the "
                             f"{bundle['dataset']} model reads {wanted} steps")
        if not np.isfinite(s).all():
            raise InputError(f"{source}: series {i} holds NaN or missing values")
    x, mask = pad_series(series, length)
    statistics = bundle["standardisation"]
    if statistics is not None:
        x = apply_channel_statistics(x, mask, statistics["mean"].numpy(),
                                     statistics["std"].numpy())
    return torch.from_numpy(x), torch.from_numpy(mask)


def series_from_array(array: Any, *, source: str = "request") -> list[np.ndarray]:
    """A request ``[N, L, C]`` (steps after a series' end all NaN) -> series ``[C, T_i]``.

    Raises:
        InputError: for another rank, non-numbers, or NaN steps before a series' end.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise InputError(f"{source}: series must be numbers, got dtype {array.dtype}")
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(f"{source}: expected series of shape [N, L, C] (N, L, C >= 1), got "
                         f"{list(array.shape)}")
    out = []
    for i, steps in enumerate(array.astype(np.float64), start=1):
        padding = np.isnan(steps).all(axis=1)
        end = len(steps) - int(np.argmin(padding[::-1])) if not padding.all() else 0
        if padding[:end].any():
            raise InputError(f"{source}: series {i} has all-NaN steps before its end (NaN "
                             f"marks only the padding after a shorter series)")
        out.append(steps[:end].T)
    return out


def predict_series(classifiers: SeriesClassifiers, x: torch.Tensor, mask: torch.Tensor
                   ) -> dict[str, np.ndarray]:
    """Embeddings and classes of prepared series (:func:`series_arrays`).

    Returns:
        ``{"embedding": [N, D] float32, "predicted_label": [N] int64 (the SVM of TS2Vec's
        protocol, the ``svm.acc`` figure), "predicted_class": [N] str, "probe_label": [N]
        int64 (the linear probe, ``linear.acc``), "probabilities": [N, K] float32 (the probe's,
        class order of ``bundle["classes"]``)}``.
    """
    bundle = classifiers.bundle
    (embedding,) = encode_splits(classifiers.model, {"x_new": x, "mask_new": mask}, ("new",),
                                 pooling=bundle["pooling"])
    z = embedding.numpy()
    labels = classifiers.svm.predict(z).astype(np.int64)
    probabilities = np.zeros((len(z), len(bundle["classes"])), dtype=np.float32)
    probabilities[:, classifiers.probe.classes_] = classifiers.probe.predict_proba(z)
    return {"embedding": z.astype(np.float32), "predicted_label": labels,
            "predicted_class": np.asarray(bundle["classes"])[labels],
            "probe_label": classifiers.probe.predict(z).astype(np.int64),
            "probabilities": probabilities}


def classify_series(classifiers: SeriesClassifiers, series: list[np.ndarray], *,
                    source: str = "request") -> dict[str, np.ndarray]:
    """:func:`predict_series` of new series ``[C, T_i]`` (the reader's layout)."""
    x, mask = series_arrays(classifiers.bundle, series, source=source)
    with torch.no_grad():
        return predict_series(classifiers, x, mask)


def default_dataset(bundle: dict[str, Any]) -> str:
    """The set a request without the ``dataset`` parameter is for: the first in name order."""
    return sorted(bundle["datasets"])[0]


def example_series(bundle: dict[str, Any]) -> np.ndarray:
    """A valid request for :func:`default_dataset`: ``[1, T, C]`` float32 zeros."""
    part = bundle["datasets"][default_dataset(bundle)]
    return np.zeros((1, part["length"], part["channels"]), dtype=np.float32)
