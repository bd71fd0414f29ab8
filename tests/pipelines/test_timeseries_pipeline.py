"""The `timeseries` pipeline run with SequentialRunner on a tiny user UCR-format dataset (real
.ts files in a temporary folder, multivariate and of unequal lengths) and a tiny MNIST-1D."""

import copy

import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError
from contrastive_signals.io.ucr_dataset import UcrArchiveDataset
from contrastive_signals.pipeline_registry import register_pipelines
from contrastive_signals.pipelines.timeseries.nodes import (
    load_ucr_datasets,
    merge_metric_reports,
    pretrain_ts_encoders,
)

TINY_ENCODER = {"output_dim": 8, "hidden_dim": 4, "depth": 1}
UCR = {
    "datasets": ["Toy"],
    "num_threads": 1,
    "default_method": "ts2vec",
    "methods": {
        "ts2vec": {"architecture": "dilated_conv", "objective": "hierarchical",
                   "encoder": TINY_ENCODER, "iterations": 3, "batch_size": 4},
        "simclr": {"architecture": "gru", "objective": "simclr",
                   "encoder": {"output_dim": 8, "hidden_dim": 4}, "iterations": 2,
                   "batch_size": 4, "projection_dim": 4, "projection_hidden_dim": 8},
    },
    "evaluation": {"tsne_iterations": 250, "tsne_perplexity": 3.0},
    "targets": {"Toy": 0.9},
    "published": {"Toy": "nobody"},
    "reference_seconds": {"Toy": 1.0},
}
MNIST1D = {"num_samples": 60, "num_threads": 1,
           "simclr": {"objective": "simclr", "encoder": TINY_ENCODER, "iterations": 2,
                      "batch_size": 16, "swa": False},
           "supervised": {"encoder": TINY_ENCODER, "epochs": 1, "batch_size": 16}}
EXPECTED = {f"ts.Toy.{m}.{p}.acc" for m in ("ts2vec", "simclr") for p in ("svm", "linear")} | {
    "ts.Toy.raw_1nn.acc", "ts.Toy.best.svm.acc", "ts.Toy.ts2vec.pretrain_seconds",
    "ts.Toy.simclr.pretrain_seconds", "mnist1d.simclr.linear.acc", "mnist1d.supervised.acc"}


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
    outputs = SequentialRunner().run(register_pipelines()["timeseries_ucr"], catalog)
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
    timing = {k for k in metrics if k.endswith("pretrain_seconds")}
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


def test_pretraining_does_not_mutate_inputs(tmp_path):
    write_toy(tmp_path)
    archive = UcrArchiveDataset(folder=str(tmp_path), include_bundled=False).load()
    data = load_ucr_datasets(archive, UCR)
    before = {k: v.clone() for k, v in data["Toy"].items() if isinstance(v, torch.Tensor)}
    pretrain_ts_encoders(data, {**UCR, "methods": {"ts2vec": UCR["methods"]["ts2vec"]}})
    assert all(torch.equal(before[k], data["Toy"][k]) for k in before)


def test_merge_rejects_duplicate_names():
    merged, mlflow = merge_metric_reports({"a.x": 1}, {"b.y": 2.0})
    assert merged == {"a.x": 1.0, "b.y": 2.0} and mlflow["b.y"] == {"value": 2.0, "step": 0}
    with pytest.raises(ValueError, match=r"\['a.x'\]"):
        merge_metric_reports({"a.x": 1}, {"a.x": 2})


def test_extra_reports_join_the_merge_without_namespace():
    from contrastive_signals.pipelines.timeseries import create_pipeline

    merge = create_pipeline(extra_reports=["ts_sleep_metrics"]).filter(
        node_names=["timeseries.merge_metric_reports"])
    assert "ts_sleep_metrics" in merge.inputs()
    assert "timeseries_metrics" in merge.outputs()


def test_same_seed_same_encoder_whatever_the_global_state(tmp_path):
    from contrastive_signals.pipelines.timeseries.params import MethodParams
    from contrastive_signals.pipelines.timeseries.training import pretrain_encoder

    x = torch.randn(8, 12, 1, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(8, 12, dtype=torch.bool)
    method = MethodParams(encoder={**TINY_ENCODER, "dropout": 0.5}, iterations=2, batch_size=4)
    torch.manual_seed(1)
    first, _ = pretrain_encoder(x, mask, method, name="a")
    torch.manual_seed(2)
    second, _ = pretrain_encoder(x, mask, method, name="b")
    assert all(torch.equal(p, q) for p, q in zip(first.state_dict().values(),
                                                second.state_dict().values(), strict=True))


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


def test_swa_average_starts_from_the_initial_weights():
    # TS2Vec's AveragedModel takes the initial weights as its first snapshot, so after one step
    # the average is the mean of the initial and the trained weights.
    from contrastive_signals.models.ts_encoders import build_ts_encoder
    from contrastive_signals.pipelines.timeseries.params import MethodParams
    from contrastive_signals.pipelines.timeseries.training import pretrain_encoder
    from contrastive_signals.training.ts2vec_draws import ts2vec_torch_seed

    x = torch.randn(8, 12, 1, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(8, 12, dtype=torch.bool)
    method = MethodParams(encoder=TINY_ENCODER, iterations=1, batch_size=4, learning_rate=0.1)
    averaged, _ = pretrain_encoder(x, mask, method, name="swa")
    trained, _ = pretrain_encoder(x, mask, MethodParams(**{**method.__dict__, "swa": False}),
                                  name="plain")
    initial = build_ts_encoder("dilated_conv", 1, TINY_ENCODER,
                               seed=ts2vec_torch_seed(method.seed))
    for key, value in averaged.state_dict().items():
        expected = (initial.state_dict()[key] + trained.state_dict()[key]) / 2
        torch.testing.assert_close(value, expected)
    assert not torch.equal(trained.state_dict()["input_fc.weight"],
                           initial.state_dict()["input_fc.weight"])


def test_default_iterations_follow_ts2vec():
    from contrastive_signals.pipelines.timeseries.params import MethodParams
    from contrastive_signals.pipelines.timeseries.training import default_iterations

    assert default_iterations(torch.zeros(50, 150, 1)) == 200
    assert default_iterations(torch.zeros(100, 1000, 1)) == 200  # exactly 100,000 values
    assert default_iterations(torch.zeros(101, 1000, 1)) == 600
    assert MethodParams(iterations=None).iterations is None
    with pytest.raises(ValueError, match="iterations"):
        MethodParams(iterations=0)


def test_centred_padding_matches_ts2vec():
    ts2vec_utils = pytest.importorskip("ts2vec.utils")
    from contrastive_signals.pipelines.timeseries.training import centre_padded_series

    lengths = [3, 7, 1, 6, 7]
    mask = torch.arange(7).view(1, 7) < torch.tensor(lengths).view(-1, 1)
    x = torch.randn(5, 7, 2, generator=torch.Generator().manual_seed(0)) * mask.unsqueeze(-1)
    before = x.clone()
    centred, centred_mask = centre_padded_series(x, mask)
    theirs = x.numpy().astype(np.float64)
    theirs[~mask.numpy()] = np.nan
    theirs = ts2vec_utils.centerize_vary_length_series(theirs)
    assert np.array_equal(centred_mask.numpy(), ~np.isnan(theirs).all(-1))
    assert np.allclose(centred.numpy(), np.nan_to_num(theirs))
    assert centred_mask.sum(1).tolist() == lengths and torch.equal(x, before)


def test_standardise_parameter_is_checked():
    with pytest.raises(ParameterError, match="standardise"):
        load_ucr_datasets({}, {**UCR, "standardise": "sometimes"})
