"""The time-series and denoising prediction functions on tiny untrained models: the same
results as the training evaluation's code paths, and bad inputs named; the pyfunc classes
in-process (MLflow's 400 error for bad requests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException

from contrastive_signals.data.ucr import (
    apply_channel_statistics,
    channel_statistics,
    read_ucr_file,
)
from contrastive_signals.inference import InputError
from contrastive_signals.inference.denoising import (
    Denoisers,
    denoise,
    denoising_bundle,
    example_images,
    sparse_view_images,
)
from contrastive_signals.inference.timeseries import (
    SeriesClassifiers,
    bundle_part,
    classify_series,
    dataset_part,
    example_series,
    series_from_array,
    timeseries_bundle,
)
from contrastive_signals.io.mlflow_task_models import DenoisingModel, TimeseriesModel
from contrastive_signals.metrics.image_quality import clip_unit
from contrastive_signals.metrics.probes import linear_probe_predict
from contrastive_signals.metrics.svm_protocol import svm_protocol_predict
from contrastive_signals.models.hvae import swap_decode, swap_donors
from contrastive_signals.models.registry import build_model, to_bundle
from contrastive_signals.models.ts_encoders import encode_splits
from contrastive_signals.models.unet import apply_in_batches
from contrastive_signals.signal.radon import SparseViewCT

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SERIES = {"in_channels": 2, "output_dim": 8, "hidden_dim": 4, "depth": 1}


def _series_set(n: int = 60, length: int = 16, *, ragged: bool = False) -> dict[str, np.ndarray]:
    """Two classes of 2-channel series (sine / cosine), as load_ucr_dataset returns them."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    t = np.linspace(0, 2 * np.pi, length)
    x = np.stack([np.stack([np.sin(t + c * 1.5), np.cos(2 * t)], 1) for c in y])
    x = (x + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    mask = np.ones((n, length), dtype=bool)
    if ragged:
        mask[::3, length - 4:] = False
        x[~mask] = 0.0
    mean, std = channel_statistics(x, mask)
    return {"x_train": apply_channel_statistics(x, mask, mean, std), "raw": x, "mask_train": mask,
            "y_train": y, "mask_test": mask, "classes": ["a", "b"],
            "standardisation": {"mean": mean, "std": std}}


@pytest.fixture(scope="module")
def series_model():
    data = _series_set()
    encoder = to_bundle(build_model("dilated_conv", SERIES, seed=0), "dilated_conv", SERIES)
    bundle = timeseries_bundle("ts2vec", {"Toy": dataset_part(
        "Toy", "ts2vec", encoder, data, pooling="padded_window", probe_c=1.0)})
    return bundle, data


def test_series_equal_the_evaluation(series_model):
    """The training series, read back raw: the evaluation's embeddings, SVM and probe."""
    bundle, data = series_model
    part = bundle_part(bundle, "Toy")
    classifiers = SeriesClassifiers(part)
    (train,) = encode_splits(classifiers.model, {"x_train": torch.from_numpy(data["x_train"]),
                                                 "mask_train": torch.from_numpy(data["mask_train"])},
                             ("train",), pooling="padded_window")
    out = classify_series(classifiers, [s.T for s in data["raw"]], source="x.ts")
    np.testing.assert_allclose(out["embedding"], train.numpy(), atol=1e-5)
    svm, _ = svm_protocol_predict(train.numpy(), data["y_train"], train.numpy())
    np.testing.assert_array_equal(out["predicted_label"], svm)
    np.testing.assert_array_equal(out["predicted_class"], np.array(["a", "b"])[svm])
    probe = linear_probe_predict(train.numpy(), data["y_train"], train.numpy(), c=1.0)
    np.testing.assert_array_equal(out["probe_label"], probe)
    np.testing.assert_allclose(out["probabilities"].sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(out["probabilities"].argmax(1), probe)


def test_series_request_array_with_nan_padding():
    array = np.zeros((2, 5, 1), dtype=np.float32)
    array[1, 3:] = np.nan
    series = series_from_array(array)
    assert [s.shape for s in series] == [(1, 5), (1, 3)]
    array[0, 1] = np.nan
    with pytest.raises(InputError, match="series 1 has all-NaN steps before its end"):
        series_from_array(array)
    with pytest.raises(InputError, match=r"shape \[N, L, C\]"):
        series_from_array(np.zeros((4, 5)))


@pytest.mark.parametrize(("series", "message"), [
    ([np.zeros((3, 16))], "series 1 has 3 channel\\(s\\); the Toy model reads 2"),
    ([np.zeros((2, 16)), np.zeros((2, 15))], "series 2 has 15 steps; .* reads exactly 16"),
    ([np.full((2, 16), np.nan)], "series 1 holds NaN"),
    ([], "no series"),
])
def test_series_bad_input_is_named(series_model, series, message):
    classifiers = SeriesClassifiers(bundle_part(series_model[0], "Toy"))
    with pytest.raises(InputError, match=f"^new.ts: {message}"):
        classify_series(classifiers, series, source="new.ts")


def test_ragged_sets_take_shorter_series_not_longer():
    data = _series_set(n=12, ragged=True)
    encoder = to_bundle(build_model("dilated_conv", SERIES, seed=0), "dilated_conv", SERIES)
    part = dataset_part("Ragged", "m", encoder, data, pooling="observed_steps", probe_c=1.0)
    assert not part["equal_length"] and part["svm"]["C"] == float("inf")  # small: hard margin
    classifiers = SeriesClassifiers(part)
    out = classify_series(classifiers, [np.zeros((2, 9))])
    assert out["embedding"].shape == (1, 8)
    with pytest.raises(InputError, match="between 1 and 16 steps"):
        classify_series(classifiers, [np.zeros((2, 17))])


def test_unknown_set_and_pyfunc_errors(series_model):
    bundle, data = series_model
    with pytest.raises(InputError, match=r"trained on \['Toy'\], not on 'GunPoint'"):
        bundle_part(bundle, "GunPoint")
    model = TimeseriesModel()
    model.load_bundle(bundle)
    out = model.predict(None, example_series(bundle))
    assert out["embedding"].shape == (1, 8)
    np.testing.assert_array_equal(
        model.predict(None, data["raw"][:4], {"dataset": "Toy"})["predicted_label"],
        classify_series(model.classifiers("Toy"), [s.T for s in data["raw"][:4]])[
            "predicted_label"])
    for request, params in ((np.zeros((1, 16, 3)), None), (np.zeros((1, 16, 2)),
                                                             {"dataset": "Other"})):
        with pytest.raises(MlflowException) as failed:
            model.predict(None, request, params)
        assert failed.value.get_http_status_code() == 400


def test_ts_reader_takes_files_without_labels(tmp_path):
    path = tmp_path / "new.ts"
    path.write_text("@problemName Toy\n@univariate true\n@equalLength false\n"
                    "@classLabel false\n@data\n1.0,2.0,3.0\n4.0,5.0\n")
    raw = read_ucr_file(path, require_labels=False)
    assert raw.labels is None and [s.shape for s in raw.series] == [(1, 3), (1, 2)]
    with pytest.raises(ValueError, match="@classLabel false: no classes"):
        read_ucr_file(path)


# --------------------------------------------------------------------------- denoising

SIZE = 16


@pytest.fixture(scope="module")
def ct():
    hvae_config = {"image_size": SIZE, "channels": (4, 4, 4), "spatial_signal": 2,
                   "spatial_noise": 1, "global_signal": 2, "global_noise": 1,
                   "latent_stride": 2}
    unet_config = {"base_channels": 2, "depth": 1}
    hvae = to_bundle(build_model("hvae", hvae_config, seed=0), "hvae", hvae_config)
    unet = to_bundle(build_model("residual_unet", unet_config, seed=0), "residual_unet",
                     unet_config)
    clean = torch.rand(10, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    bundle = denoising_bundle(hvae, unet, clean, donor_pool=6, donor_seed=7, views=[4, 8],
                              train_views=[4, 8])
    return bundle, clean


def test_denoising_equals_the_evaluation(ct):
    """The first view count's donors, the U-Net and the swap, as sparse_view_scores."""
    bundle, clean = ct
    denoisers = Denoisers(bundle)
    noisy = SparseViewCT(SIZE, 4).sparse_view(clean[:5])
    out = denoise(denoisers, noisy)
    donors, _ = swap_donors({"clean": clean, "noisy": {4: clean}}, 4, 5, pool=6,
                            generator=torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(out["hvae"], clip_unit(swap_decode(
        denoisers.hvae, noisy[:, None], donors))[:, 0].numpy())
    np.testing.assert_array_equal(out["unet"], clip_unit(apply_in_batches(
        denoisers.unet, noisy[:, None]))[:, 0].numpy())
    assert out["hvae"].min() >= 0 and out["hvae"].max() <= 1


def test_sinograms_are_back_projected_as_the_pipeline(ct):
    bundle, clean = ct
    sinograms = SparseViewCT(SIZE, 8).project(clean[:3]).numpy()
    images = sparse_view_images(bundle, sinograms, kind="sinogram")
    np.testing.assert_allclose(images.numpy(), SparseViewCT(SIZE, 8).sparse_view(clean[:3]).numpy(),
                               atol=1e-6)
    assert sparse_view_images(bundle, sinograms[0], kind="sinogram").shape == (1, SIZE, SIZE)
    assert example_images(bundle).shape == (1, SIZE, SIZE)


@pytest.mark.parametrize(("array", "kind", "message"), [
    (np.zeros((2, 15, 16)), "image", "images of 15x16 pixels; the denoisers were trained on 16x16"),
    (np.zeros((4, 15)), "sinogram", "sinograms must be \\[V, 16\\]"),
    (np.zeros((17, 16)), "sinogram", "sinograms must be \\[V, 16\\] with 2 <= V <= 16"),
    (np.full((16, 16), np.nan), "image", "NaN"),
    (np.zeros((16, 16)), "photo", "input kind must be one of"),
    (np.zeros(5), "image", "expected images of shape"),
])
def test_denoising_bad_input_is_named(ct, array, kind, message):
    with pytest.raises(InputError, match=f"^scan.npy: .*{message}"):
        sparse_view_images(ct[0], array, kind=kind, source="scan.npy")


def test_denoising_pyfunc(ct):
    bundle, clean = ct
    model = DenoisingModel()
    model.load_bundle(bundle)
    sinograms = SparseViewCT(SIZE, 8).project(clean[:2]).numpy()
    out = model.predict(None, sinograms, {"input_kind": "sinogram", "donor_seed": 3})
    expected = denoise(model.denoisers, sparse_view_images(bundle, sinograms, kind="sinogram"),
                       donor_seed=3)
    np.testing.assert_array_equal(out["hvae"], expected["hvae"])
    with pytest.raises(MlflowException) as failed:
        model.predict(None, np.zeros((1, 8, 8), dtype=np.float32))
    assert failed.value.get_http_status_code() == 400


def test_inference_parameter_blocks_are_checked_before_the_run():
    from contrastive_signals.pipelines.parameter_checks import parameter_problems

    problems = parameter_problems([
        ("inference.denoising", {"input_folder": "x", "plot_items": 0}),
        ("inference.timeseries", {"dataset": "", "input_folder": "x"}),
        ("inference.timeseries", {"dataset": "GunPoint", "input_folder": "x", "colour": 1}),
    ])
    assert problems[0].startswith("inference.denoising") and "plot_items must be >= 1" in problems[0]
    assert "inference.timeseries" in problems[1] and "dataset must not be empty" in problems[1]
    assert "unknown parameter(s) ['colour']" in problems[2]


def test_best_model_figure_matches_suffixes_and_patterns_and_averages():
    from types import SimpleNamespace as Metric

    from contrastive_signals.io.mlflow_models import BEST_METRIC, _metric_score

    metrics = [Metric(key=k, value=v) for k, v in {
        "triplet_pretrained.knn.acc": 0.9, "denoise.hvae_swap.v8.psnr": 20.0,
        "denoise.hvae_swap.v16.psnr": 24.0, "denoise.unet.v8.psnr": 30.0,
        "ts.A.ts2vec.svm.acc": 0.5, "ts.B.ts2vec.svm.acc": 0.7}.items()]
    assert _metric_score(metrics, BEST_METRIC["digits"]) == 0.9
    assert _metric_score(metrics, BEST_METRIC["denoising"]) == 22.0
    assert _metric_score(metrics, BEST_METRIC["timeseries"]) == pytest.approx(0.6)
    assert _metric_score(metrics, "sleep.kappa") is None and _metric_score(None, "x") is None
