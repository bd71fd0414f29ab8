"""The `afm` pipeline run with SequentialRunner at the `conf/test` sizes: the simulated
curves really are written as afmformats HDF5 files and read back (the two raw datasets point
at a temporary folder); the rest stays in memory."""

import copy

import numpy as np
import pytest
import torch
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError
from contrastive_signals.data.afm_curves import AfmFileError
from contrastive_signals.io.afm_dataset import AfmCurveFolderDataset, SimulatedAfmCurvesDataset
from contrastive_signals.pipeline_registry import register_pipelines
from contrastive_signals.pipelines.afm.nodes import (
    finetune_classifier,
    preprocess_afm_curves,
    pretrain_encoder,
    split_afm_curves,
)
from contrastive_signals.pipelines.afm.pipeline import VARIANTS
from tests.conftest import PROJECT_ROOT
from tests.pipelines.kept_memory import KeptMemoryDataset

KEPT = ("afm.curves", "afm.split", "afm.ingestion_report", "afm.deriv.features")


def merged(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def test_params() -> dict:
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_afm.yml").read_text())["afm"]
    tiny = yaml.safe_load((PROJECT_ROOT / "conf/test/parameters_afm.yml").read_text())["afm"]
    params = merged(base, tiny)
    for section in ("pretraining", "finetuning", "supervised"):
        params[section]["num_threads"] = 1
    return params


test_params.__test__ = False  # a helper, not a test


# Tiny models: one torch thread (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_afm(folder, params, *, nodes=None) -> dict:
    datasets = {
        "afm.simulated_files": SimulatedAfmCurvesDataset(folder=str(folder), curves_per_file=40),
        "afm.raw_files": AfmCurveFolderDataset(folder=str(folder)),
        **{name: KeptMemoryDataset() for name in KEPT},
        **{f"params:afm.{key}": MemoryDataset(value) for key, value in params.items()},
    }
    pipeline = register_pipelines()["afm"]
    if nodes is not None:
        pipeline = pipeline.only_nodes(*nodes)
    catalog = DataCatalog(datasets=datasets)
    outputs = SequentialRunner().run(pipeline, catalog)
    loaded = {name: value.load() if hasattr(value, "load") else value
              for name, value in outputs.items()}
    return {**loaded, **{name: catalog.load(name) for name in KEPT if catalog.exists(name)}}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("afm")
    return folder, run_afm(folder, test_params())


def test_full_run_reports_every_metric_and_plot(full_run):
    folder, out = full_run
    metrics = out["afm_metrics"]
    names = {"afm.single_rupture.f1", "afm.macro_f1", "afm.find_peaks.single_rupture.f1",
             "afm.supervised_cnn.macro_f1", *{f"afm.{v}.macro_f1" for v in VARIANTS}}
    assert names <= set(metrics)
    assert all(0.0 <= metrics[name] <= 1.0 for name in names)
    assert metrics["afm.ingestion.curves"] == 160 and metrics["afm.ingestion.bad_files"] == 0
    assert len(VARIANTS) == 12 and "deriv_pre_20pc" in VARIANTS \
        and "noderiv_scratch_100pc" in VARIANTS
    assert out["afm_metrics_mlflow"]["afm.macro_f1"] == {"value": metrics["afm.macro_f1"],
                                                          "step": 0}
    for plot in ("afm.examples_plot", "afm.tsne_plot", "afm.confusion_plot"):
        assert isinstance(out[plot], Figure)
    assert sorted(p.name for p in folder.glob("*.h5")) == [f"simulated-00{i}.h5" for i in range(4)]
    features = out["afm.deriv.features"]["curves"]
    assert features.shape == (160, 2, 256) and torch.isfinite(features).all()


def test_split_is_stratified_and_label_subsets_nest(full_run):
    _, out = full_run
    split, labels = out["afm.split"], out["afm.curves"]["labels"].numpy()
    parts = [set(split[name]) for name in ("train", "val", "test")]
    assert sum(map(len, parts)) == 160 and not (parts[0] & parts[1] or parts[0] & parts[2])
    assert set(split["labelled"]["5pc"]) < set(split["labelled"]["100pc"]) == parts[0]
    assert len(split["labelled"]["5pc"]) < len(split["labelled"]["20pc"]) < len(parts[0])
    assert set(np.unique(labels[split["labelled"]["5pc"]])) == {0, 1, 2, 3}


def test_label_seed_redraws_the_labelled_subsets_but_keeps_the_split():
    labels = np.repeat(np.arange(4), 50)
    base = {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 0,
            "label_fractions": {"5pc": 0.05, "20pc": 0.2, "100pc": 1.0}}
    default = split_afm_curves({"labels": torch.as_tensor(labels)}, base)
    same = split_afm_curves({"labels": torch.as_tensor(labels)}, {**base, "label_seed": 0})
    other = split_afm_curves({"labels": torch.as_tensor(labels)}, {**base, "label_seed": 1})
    assert same == default
    assert other["train"] == default["train"] and other["test"] == default["test"]
    assert other["labelled"]["100pc"] == default["labelled"]["100pc"]
    assert other["labelled"]["5pc"] != default["labelled"]["5pc"]


def test_bad_file_is_reported_or_raised_by_name(tmp_path):
    params = test_params()
    params["simulation"]["n_curves"] = 40
    (tmp_path / "broken.jpk-force").write_bytes(b"not a zip archive")
    ingest = ("afm_simulate_curves", "afm_ingest_curves")
    with pytest.raises(AfmFileError, match=r"1 bad AFM file\(s\):\n  - broken.jpk-force"):
        run_afm(tmp_path, params, nodes=ingest)
    params["ingestion"]["on_bad_file"] = "report"
    out = run_afm(tmp_path, params, nodes=ingest)
    report = out["afm.ingestion_report"]
    assert report["curves"] == 40 and report["files"] == 2
    assert [b["file"] for b in report["bad_files"]] == ["broken.jpk-force"]
    assert out["afm.curves"]["force"].shape == (40, 1, 512)


def test_preprocessing_leaves_its_input_alone_and_drops_the_derivative():
    curves = {"force": torch.randn(4, 1, 512) * 1e-10, "labels": torch.arange(4)}
    before = curves["force"].clone()
    params = test_params()["preprocessing"]
    assert preprocess_afm_curves(curves, params, derivative=True)["curves"].shape == (4, 2, 256)
    assert preprocess_afm_curves(curves, params, derivative=False)["curves"].shape == (4, 1, 256)
    torch.testing.assert_close(curves["force"], before)


def test_bad_parameters_fail_before_training_with_their_path():
    params = test_params()
    params["finetuning"]["triplet"]["sampling"] = "hardest"
    with pytest.raises(ParameterError, match=r"afm.finetuning.triplet: sampling must be one of"):
        finetune_classifier({}, {}, {}, params["finetuning"], label_subset="5pc", name="x")
    steps = test_params()["preprocessing"]
    steps["steps"] = steps["steps"][:-1]
    with pytest.raises(ParameterError, match="afm.preprocessing: steps must end with"):
        preprocess_afm_curves({}, steps, derivative=True)
    steps = test_params()["preprocessing"]
    steps["steps"][-1] = {"name": "derivative_channel", "smooth_window": 8}
    with pytest.raises(ParameterError, match=r"afm.preprocessing: steps\[6\] \(derivative_channel"
                                             r"\): smooth_window must be an odd integer"):
        preprocess_afm_curves({}, steps, derivative=True)
    split = test_params()["split"]
    split["label_fractions"] = {"5pc": 0.05, "100pc": 1.0}
    with pytest.raises(ParameterError, match=r"afm.split: label_fractions must name exactly"):
        split_afm_curves({"labels": torch.zeros(4)}, split)


def test_derivative_options_travel_with_the_derivative_features():
    curves = {"force": torch.randn(4, 1, 512) * 1e-10, "labels": torch.arange(4)}
    params = test_params()["preprocessing"]
    assert "derivative" not in preprocess_afm_curves(curves, params, derivative=True)
    params["steps"][-1] = {"name": "derivative_channel", "scale": 0.2, "smooth_window": 5}
    out = preprocess_afm_curves(curves, params, derivative=True)
    assert out["derivative"] == {"scale": 0.2, "smooth_window": 5}
    assert "derivative" not in preprocess_afm_curves(curves, params, derivative=False)


def test_same_seeds_give_the_same_metrics(full_run, tmp_path):
    _, first = full_run
    again = run_afm(tmp_path, test_params())
    assert again["afm_metrics"] == first["afm_metrics"]


def test_a_pretraining_method_that_does_not_fit_the_curve_encoder_fails_naming_both():
    params = test_params()
    params["pretraining"]["method"] = "ts2vec"
    with pytest.raises(ParameterError, match=r"afm.pretraining: method 'ts2vec' needs an encoder "
                                             r"of series data .*'curve_cnn' reads signal data"):
        pretrain_encoder({}, {}, params["model"], params["pretraining"], name="x")


@pytest.mark.parametrize("method", ["supcon", "triplet"])
def test_supcon_and_triplet_pretraining_by_configuration(full_run, method):
    """The labelled training curves only; the encoder bundle is a curve_cnn."""
    _, out = full_run
    params = test_params()
    params["pretraining"]["method"] = method
    features, split = out["afm.deriv.features"], out["afm.split"]
    bundle, history, steps = pretrain_encoder(features, split, params["model"],
                                              params["pretraining"], name="deriv.pretrained")
    assert bundle["architecture"] == "curve_cnn" and len(history["train_loss"]) == 1
    assert 0 <= history["val_knn_acc"][0] <= 1 and "afm.deriv.pretrained.train_loss" in steps
