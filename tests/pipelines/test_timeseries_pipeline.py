"""The `timeseries` pipeline run with SequentialRunner on a tiny user UCR-format dataset (real
.ts files in a temporary folder, multivariate and of unequal lengths) and a tiny MNIST-1D."""

import copy

import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.io.ucr_dataset import UcrArchiveDataset
from contrastive_signals.metrics.ts_baselines import BASELINES
from contrastive_signals.pipeline_registry import register_pipelines
from contrastive_signals.pipelines.timeseries import create_pipeline
from contrastive_signals.pipelines.timeseries.nodes import load_ucr_datasets, pretrain_ts_encoders
from contrastive_signals.pipelines.timeseries.params import Mnist1dParams, UcrParams
from tests.conf_parameters import conf_parameters

TINY_ENCODER = {"output_dim": 8, "hidden_dim": 4, "depth": 1}
UCR = {
    "datasets": ["Toy"],
    "num_threads": 1,
    "default_method": "ts2vec",
    "methods": {
        "ts2vec": {"method": "ts2vec", "architecture": "dilated_conv", "encoder": TINY_ENCODER,
                   "iterations": 3, "batch_size": 4},
        "simclr": {"method": "simclr", "architecture": "gru",
                   "encoder": {"output_dim": 8, "hidden_dim": 4}, "iterations": 2,
                   "batch_size": 4,
                   "two_view": {"head": {"hidden_dim": 8, "out_dim": 4, "batch_norm": False}}},
        "supcon": {"method": "supcon", "architecture": "cnn1d",
                   "encoder": {"output_dim": 8, "hidden_dim": 4, "layers": 1}, "iterations": 2,
                   "batch_size": 6, "swa": False},
        "softclt": {"method": "softclt", "architecture": "dilated_conv", "encoder": TINY_ENCODER,
                    "iterations": 3, "batch_size": 4,
                    "softclt": {"tau_instance": 5.0, "tau_temporal": 1.0}},
        "triplet": {"method": "triplet", "architecture": "transformer",
                    "encoder": {"output_dim": 8, "hidden_dim": 4, "layers": 1, "heads": 2},
                    "iterations": 3, "triplet": {"classes_per_batch": 2, "samples_per_class": 3}},
    },
    "evaluation": {"tsne_iterations": 250, "tsne_perplexity": 3.0},
    "targets": {"Toy": 0.9},
    "published": {"Toy": "nobody"},
    "reference_seconds": {"Toy": 1.0},
}
MNIST1D = {"num_samples": 60, "num_threads": 1, "svm_methods": ["ts2vec", "softclt"],
           "simclr": {"method": "simclr", "encoder": TINY_ENCODER, "iterations": 2,
                      "batch_size": 16, "swa": False},
           "supervised": {"encoder": TINY_ENCODER, "classifier": {"batch_size": 16},
                          "fit": {"epochs": 1, "learning_rate": 1e-3, "device": "cpu",
                                  "amp": False, "progress": False}}}
METHODS = tuple(UCR["methods"])
EXPECTED = {f"ts.Toy.{m}.{p}.acc" for m in METHODS for p in ("svm", "linear")} | {
    f"ts.Toy.{m}.pretrain_seconds" for m in METHODS} | {
    "ts.Toy.raw_1nn.acc", "ts.Toy.best.svm.acc", "mnist1d.simclr.linear.acc",
    "mnist1d.supervised.acc", "ts.baselines.warmup_seconds", "mnist1d.baselines.warmup_seconds"
} | {f"{prefix}.{b}.{figure}" for prefix in ("ts.Toy", "mnist1d") for b in BASELINES
     for figure in ("acc", "fit_seconds", "predict_seconds")} | {
    f"mnist1d.{m}.{figure}" for m in ("ts2vec", "softclt")
    for figure in ("svm.acc", "pretrain_seconds")}


# Tiny models: one torch thread (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_toy(folder):
    """Two classes (slow vs fast oscillation), 2 channels, lengths 10-16."""
    rng = np.random.default_rng(0)
    header = ("@problemName Toy\n@timeStamps false\n@missing false\n@univariate false\n"
              "@equalLength false\n@classLabel true slow fast\n@data\n")
    (folder / "Toy").mkdir(parents=True)
    for split, n in (("TRAIN", 12), ("TEST", 8)):
        rows = []
        for i in range(n):
            label = ("slow", "fast")[i % 2]
            t = np.arange(rng.integers(10, 17))
            wave = np.sin(t * (0.3 if label == "slow" else 2.0))
            channels = [wave + 0.05 * rng.normal(size=len(t)), np.cos(t) * 0.5]
            rows.append(":".join(",".join(f"{v:.4f}" for v in c) for c in channels) + f":{label}")
        (folder / "Toy" / f"Toy_{split}.ts").write_text(header + "\n".join(rows) + "\n")


def run(folder, ucr=UCR, mnist1d=MNIST1D):
    catalog = DataCatalog(datasets={
        "timeseries.ucr_archive": UcrArchiveDataset(folder=str(folder), include_bundled=False),
        "params:timeseries.ucr": MemoryDataset(ucr),
        "params:timeseries.mnist1d": MemoryDataset(mnist1d),
    })
    outputs = SequentialRunner().run(create_pipeline(ucr_sets=ucr["datasets"]), catalog)
    return {name: value.load() if hasattr(value, "load") else value
            for name, value in outputs.items()}


def test_runs_end_to_end_with_documented_names_and_is_reproducible(tmp_path):
    write_toy(tmp_path)
    first, second = run(tmp_path), run(tmp_path)
    metrics = first["timeseries_metrics"]
    assert set(metrics) == EXPECTED
    assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k.endswith(".acc"))
    assert metrics["ts.Toy.best.svm.acc"] == metrics["ts.Toy.ts2vec.svm.acc"]
    assert first["timeseries_metrics_mlflow"]["ts.Toy.raw_1nn.acc"]["step"] == 0
    assert isinstance(first["timeseries.ucr_tsne_plot"], Figure)
    table = first["timeseries.ucr_results_table"]
    assert "Toy / ts2vec" in table and "nobody" in table and "time ratio" in table
    assert "minirocket acc" in table and "dtw_1nn fit s" in table
    timing = {k for k in metrics if k.endswith("seconds")}
    assert {k: v for k, v in metrics.items() if k not in timing} == {
        k: v for k, v in second["timeseries_metrics"].items() if k not in timing}


def test_unknown_dataset_lists_known_names(tmp_path):
    write_toy(tmp_path)
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    with pytest.raises(KeyError, match=r"'Nope'.*known datasets: \['Toy'\]"):
        load_ucr_datasets(archive, {**UCR, "datasets": ["Toy", "Nope"]})


def test_bad_parameters_fail_with_their_path(tmp_path):
    write_toy(tmp_path)
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    bad = copy.deepcopy(UCR)
    bad["methods"]["ts2vec"]["architecture"] = "wavenet"
    with pytest.raises(ParameterError, match=r"timeseries\.ucr\.methods\.ts2vec.*wavenet"):
        load_ucr_datasets(archive, bad)
    with pytest.raises(ParameterError, match="default_method"):
        load_ucr_datasets(archive, {**UCR, "default_method": "tloss"})


@pytest.mark.parametrize(("method", "architecture", "message"), [
    ("ts2vec", "curve_cnn", r"method 'ts2vec' needs an encoder of series data with output "
                            r"per_step; 'curve_cnn' reads signal data"),
    ("simclr", "digit_cnn", r"method 'simclr' on series data needs an encoder of series data; "
                           r"'digit_cnn' reads image data"),
    ("triplet", "w2v_conv", r"method 'triplet' needs .* output instance/per_step; 'w2v_conv'"),
    ("tloss", "dilated_conv", r"method must be one of"),
])
def test_a_method_that_does_not_fit_the_encoder_fails_naming_both(tmp_path, method,
                                                                   architecture, message):
    write_toy(tmp_path)
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    bad = copy.deepcopy(UCR)
    bad["methods"]["ts2vec"].update(method=method, architecture=architecture)
    with pytest.raises(ParameterError, match=r"timeseries\.ucr\.methods\.ts2vec: " + message):
        pretrain_ts_encoders(load_ucr_datasets(archive, UCR), bad)


def test_mnist1d_svm_methods_must_be_ucr_method_entries():
    from contrastive_signals.pipelines.timeseries.nodes import evaluate_mnist1d_svm_methods

    with pytest.raises(ValueError, match=r"svm_methods \['tloss'\] are not entries of "
                                         r"timeseries\.ucr\.methods"):
        evaluate_mnist1d_svm_methods({}, {**MNIST1D, "svm_methods": ["tloss"]}, UCR)
    with pytest.raises(ParameterError, match="svm_methods must not repeat"):
        evaluate_mnist1d_svm_methods({}, {**MNIST1D, "svm_methods": ["ts2vec", "ts2vec"]}, UCR)


def test_pretraining_does_not_mutate_inputs(tmp_path):
    write_toy(tmp_path)
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    data = load_ucr_datasets(archive, UCR)
    before = {k: v.clone() for k, v in data["Toy"].items() if isinstance(v, torch.Tensor)}
    pretrain_ts_encoders(data, {**UCR, "methods": {"ts2vec": UCR["methods"]["ts2vec"]}})
    assert all(torch.equal(before[k], data["Toy"][k]) for k in before)


def test_extra_reports_join_the_merge_without_namespace():
    merge = create_pipeline(extra_reports=["ts_sleep_metrics"]).filter(
        node_names=["timeseries.merge_metric_reports"])
    assert "ts_sleep_metrics" in merge.inputs()
    assert "timeseries_metrics" in merge.outputs()


def test_timeseries_run_joins_the_sleep_label_efficiency_figures():
    """`timeseries` = `timeseries_ucr` + `wav2vec`, wav2vec's flat figures merged into the
    one report; `timeseries_ucr` needs nothing from wav2vec."""
    pipelines = register_pipelines()
    merge = next(n for n in pipelines["timeseries"].nodes
                 if n.name == "timeseries.merge_metric_reports")
    assert "ts_sleep_metrics" in merge.inputs
    assert "ts_sleep_metrics" in pipelines["timeseries"].all_outputs()
    assert "ts_sleep_metrics" not in pipelines["timeseries"].inputs()
    assert set(pipelines["wav2vec"].nodes) <= set(pipelines["timeseries"].nodes)
    assert not any(name.startswith("wav2vec") for name in pipelines["timeseries_ucr"].inputs())


def test_standardise_parameter_is_checked():
    with pytest.raises(ParameterError, match="standardise"):
        load_ucr_datasets({}, {**UCR, "standardise": "sometimes"})


def test_conf_base_runs_the_decorrelated_ts2vec_at_085_of_ts2vecs_steps():
    """conf/base's own method: TS2Vec's entry plus the decorrelation penalty (weight 5) and
    0.85 of its step budget, also scored on MNIST-1D; everything else as TS2Vec."""
    params = conf_parameters()["timeseries"]
    ucr = from_params(UcrParams, params["ucr"], path="timeseries.ucr")
    expected = copy.deepcopy(params["ucr"]["methods"]["ts2vec"])
    expected["ts2vec"]["decorrelation"] = 5.0
    expected["iteration_scale"] = 0.85
    assert ucr.methods["ts2vec_decorrelated"] == expected
    assert ucr.default_method == "ts2vec"  # TS2Vec stays the reference the report compares to
    mnist1d = from_params(Mnist1dParams, params["mnist1d"], path="timeseries.mnist1d")
    assert tuple(mnist1d.svm_methods) == ("ts2vec", "ts2vec_decorrelated")


def test_the_softclt_env_adds_softclt_beside_conf_base():
    """conf/softclt over conf/base: every base method kept, plus SoftCLT on TS2Vec's
    network and budget, also scored on MNIST-1D."""
    base = conf_parameters()["timeseries"]
    params = conf_parameters("softclt")["timeseries"]
    ucr = from_params(UcrParams, params["ucr"], path="timeseries.ucr")
    assert set(ucr.methods) == set(base["ucr"]["methods"]) | {"softclt"}
    entry = ucr.methods["softclt"]
    assert entry["method"] == "softclt" and entry["softclt"]["tau_instance"] == 20.0
    assert {k: v for k, v in entry.items() if k not in ("method", "softclt")} == {
        k: v for k, v in base["ucr"]["methods"]["ts2vec"].items() if k not in ("method", "ts2vec")}
    mnist1d = from_params(Mnist1dParams, params["mnist1d"], path="timeseries.mnist1d")
    assert tuple(mnist1d.svm_methods) == ("ts2vec", "ts2vec_decorrelated", "softclt")
