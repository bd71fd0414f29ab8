"""Each pipeline sliced and run with SequentialRunner on tiny in-memory inputs."""

import copy
from pathlib import Path

import pytest
import torch

from contrastive_signals.config import ParameterError
from contrastive_signals.data.validation import MalformedDataError
from contrastive_signals.pipeline_registry import register_pipelines
from contrastive_signals.pipelines.features.nodes import build_image_features
from contrastive_signals.pipelines.ingestion.nodes import split_digit_images
from tests.pipelines.kept_memory import run_in_memory

FIT = {"epochs": 1, "learning_rate": 0.001, "device": "cpu", "seed": 0, "progress": False}
ENCODER = {"architecture": "digit_cnn", "config": {"embedding_dim": 16}}
VIT = {"architecture": "vit", "config": {"patch_size": 7, "embedding_dim": 16, "depth": 1,
                                         "heads": 2}}
TINY_PARAMS = {
    "ingestion": {"split": {"val_fraction": 0.1, "test_fraction": 0.25, "seed": 1, "max_samples": 300}},
    "features": {"mean": 0.5, "std": 0.5, "filters": []},
    "pretraining": {
        "simclr": {"method": {"objective": "simclr"}, "batch_size": 32, "encoder": ENCODER,
                   "fit": FIT},
        "supcon": {"method": {"objective": "supcon"}, "batch_size": 32, "encoder": ENCODER,
                   "fit": FIT},
        "simclr_vit": {"batch_size": 32, "encoder": VIT, "fit": FIT},
        "supcon_vit": {"method": {"objective": "supcon"}, "batch_size": 32, "encoder": VIT,
                       "fit": FIT},
    },
    "triplet": {"method": {"classes_per_batch": 4, "samples_per_class": 3}, "encoder": ENCODER,
                "fit": FIT},
    "triplet_vit": {"method": {"classes_per_batch": 4, "samples_per_class": 3}, "encoder": VIT,
                    "fit": FIT},
    "supervised": {"encoder": {"architecture": "supervised_cnn"}, "fit": FIT},
    "supervised_vit": {"encoder": VIT, "fit": FIT},
    "evaluation": {"rvfl_hidden_dim": 16, "label_subsets": 2, "labels_per_class": 2,
                   "tsne_perplexity": 5.0, "tsne_iterations": 250, "probe_max_iter": 200},
}


def run(pipeline, inputs: dict, params: dict = TINY_PARAMS, keep: tuple[str, ...] = ()) -> dict:
    """Run ``pipeline`` on in-memory ``inputs``; return its free outputs and the ``keep`` ones."""
    return run_in_memory(pipeline, inputs, params, keep)


@pytest.fixture(scope="module")
def pipelines():
    return register_pipelines()


@pytest.fixture(scope="module")
def digits_raw():
    from contrastive_signals.data.digits import embedded_digits

    images, labels = embedded_digits()
    return {"images": images, "labels": labels, "source": "digits"}


@pytest.fixture(scope="module")
def features(pipelines, digits_raw):
    out = run(pipelines["ingestion"] + pipelines["image_features"], {"digit_images_raw": digits_raw})
    return out["digit_features"]


def test_ingestion_and_features_outputs(pipelines, digits_raw):
    out = run(pipelines["ingestion"] + pipelines["image_features"], {"digit_images_raw": digits_raw},
              keep=("digit_splits",))
    sizes = {part: len(d["labels"]) for part, d in out["digit_splits"].items()}
    assert sum(sizes.values()) == 300 and sizes["test"] == 75
    feats = out["digit_features"]
    assert feats["train"]["images"].shape[1:] == (1, 28, 28)
    assert -1.0 <= feats["train"]["images"].min() and feats["train"]["images"].max() <= 1.0
    assert out["digit_split_summary"]["test"]["size"] == 75


def test_feature_filters_add_channels(tiny_digit_splits):
    feats = build_image_features(tiny_digit_splits, {"filters": ["box", "sharpen"]})
    assert feats["train"]["images"].shape[1] == 3


def test_nodes_do_not_mutate_inputs(tiny_digit_splits):
    before = copy.deepcopy(tiny_digit_splits)
    build_image_features(tiny_digit_splits, {"filters": ["box"]})
    raw = {"images": torch.cat([d["images"] for d in tiny_digit_splits.values()]),
           "labels": torch.cat([d["labels"] for d in tiny_digit_splits.values()]), "source": "t"}
    raw_before = copy.deepcopy(raw)
    split_digit_images(raw, {"split": {"val_fraction": 0.1, "test_fraction": 0.3, "seed": 0}})
    for part in before:
        assert torch.equal(before[part]["images"], tiny_digit_splits[part]["images"])
    assert torch.equal(raw_before["images"], raw["images"])


def test_malformed_raw_images_rejected_before_training():
    bad = {"images": torch.zeros(20, 1, 8, 8), "labels": torch.arange(20) % 10, "source": "digits"}
    with pytest.raises(MalformedDataError, match="digit images"):
        split_digit_images(bad, {})


def test_pretraining_returns_encoder_and_history(pipelines, features):
    out = run(pipelines["pretraining"], {"digit_features": features})
    for objective in ("simclr", "supcon"):
        bundle = out[f"{objective}.encoder"]
        assert bundle["architecture"] == "digit_cnn" and bundle["config"]["embedding_dim"] == 16
        assert len(out[f"{objective}.history"]["train_loss"]) == 1
        assert f"{objective}.train_loss" in out[f"{objective}.history_metrics"]


def test_bad_pretraining_parameter_fails_before_training(pipelines, features):
    params = copy.deepcopy(TINY_PARAMS)
    params["pretraining"]["simclr"]["method"]["temperature"] = -1.0
    with pytest.raises(Exception, match="temperature") as error:
        run(pipelines["pretraining"].only_nodes_with_namespaces(["simclr"]),
            {"digit_features": features}, params)
    assert "pretraining.simclr" in str(error.value)


@pytest.mark.parametrize("sampling", ["batch_hard", "semi_hard", "offline"])
def test_triplet_pipeline_both_namespaces(pipelines, features, sampling):
    params = copy.deepcopy(TINY_PARAMS)
    params["triplet"]["method"]["sampling"] = sampling
    pretrained = run(pipelines["pretraining"].only_nodes_with_namespaces(["simclr"]),
                     {"digit_features": features})["simclr.encoder"]
    out = run(pipelines["triplet"], {"digit_features": features, "simclr.encoder": pretrained}, params)
    assert {"triplet_scratch.encoder", "triplet_pretrained.encoder"} <= set(out)
    assert out["triplet_pretrained.encoder"]["config"] == pretrained["config"]


def test_supervised_and_evaluation_report(pipelines, features):
    from contrastive_signals.pipelines.evaluation.pipeline import TRAINED_ENCODERS

    trained = run(pipelines["pretraining"] + pipelines["supervised"], {"digit_features": features})
    encoders = {f"{n}.encoder": trained[f"{n}.encoder"]
                for n in ("simclr", "supcon", "supervised", "simclr_vit", "supcon_vit",
                          "supervised_vit")}
    encoders["triplet_scratch.encoder"] = trained["simclr.encoder"]
    encoders["triplet_pretrained.encoder"] = trained["simclr.encoder"]
    encoders["triplet_vit.encoder"] = trained["simclr_vit.encoder"]
    histories = {f"{n}.history": trained["simclr.history"] for n in TRAINED_ENCODERS}
    out = run(pipelines["evaluation"], {"digit_features": features, **encoders, **histories},
              keep=("evaluation.simclr_vit.attention_plot",))
    metrics = out["evaluation_metrics"]
    for name in ("raw.linear_probe.acc", "raw.linear_probe_10pc.acc", "simclr.knn.acc",
                 "simclr.rvfl.acc", "supcon.recall_at_1", "triplet_scratch.recall_at_5",
                 "supervised.map", "supervised.test.acc"):
        assert 0.0 <= metrics[name] <= 1.0, name
    for name in ("simclr_vit.linear_probe.acc", "supervised_vit.test.acc", "triplet_vit.map"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["raw.linear_probe.acc"] > 0.8
    assert "| raw |" in out["results_table_md"].replace("  ", " ") or "raw" in out["results_table_md"]
    assert set(out["evaluation_metrics_mlflow"]) == set(metrics)
    assert out["results_table_csv"].shape[0] == 10
    assert len(out["evaluation.simclr_vit.attention_plot"].axes) >= 2


def test_supervised_hinge_loss_by_parameter(features):
    from contrastive_signals.pipelines.supervised.nodes import train_supervised_classifier

    params = copy.deepcopy(TINY_PARAMS["supervised"])
    cross_entropy = train_supervised_classifier(features, params)[1]["train_loss"]
    params["method"] = {"loss": "hinge", "hinge_kind": "crammer_singer"}
    hinge = train_supervised_classifier(features, params)[1]["train_loss"]
    assert hinge != cross_entropy and all(v >= 0 for v in hinge)
    params["method"] = {"loss": "hinge", "hinge_kind": "one_vs_rest"}
    with pytest.raises(ParameterError, match=r"supervised.method: hinge_kind must be one of"):
        train_supervised_classifier(features, params)


def test_unknown_parameter_is_named(features):
    from contrastive_signals.pipelines.supervised.nodes import train_supervised_classifier

    with pytest.raises(ParameterError, match=r"supervised: unknown parameter\(s\) \['chanels'\]"):
        train_supervised_classifier(features, {"chanels": 4, "fit": FIT})
    with pytest.raises(ParameterError, match=r"supervised.encoder: .*'vit'.*unexpected keyword"):
        train_supervised_classifier(features, {"encoder": {"architecture": "vit",
                                                           "config": {"chanels": 4}}, "fit": FIT})
    with pytest.raises(ParameterError, match=r"needs an encoder of image/signal/series.*hvae"):
        train_supervised_classifier(features, {"encoder": {"architecture": "hvae"}, "fit": FIT})


def test_same_seed_gives_same_encoder_and_history(pipelines, features):
    simclr = pipelines["pretraining"].only_nodes_with_namespaces(["simclr"])
    first = run(simclr, {"digit_features": features})
    second = run(simclr, {"digit_features": features})
    assert first["simclr.history"] == second["simclr.history"]
    for key, value in first["simclr.encoder"]["state_dict"].items():
        assert torch.equal(value, second["simclr.encoder"]["state_dict"][key]), key
    params = copy.deepcopy(TINY_PARAMS)
    params["pretraining"]["simclr"]["fit"] = {**FIT, "seed": 1}
    other = run(simclr, {"digit_features": features}, params)
    assert other["simclr.history"]["train_loss"] != first["simclr.history"]["train_loss"]


def test_signal_features_node_runs_the_yaml_recipe_and_names_bad_parameters():
    from contrastive_signals.pipelines.features.nodes import build_signal_features

    signals = torch.randn(6, 1, 128, generator=torch.Generator().manual_seed(0))
    data = {"test": {"signals": signals, "targets": torch.ones(6, 2)}}
    recipe = {"signal_key": "signals", "sampling_rate": 1.0,
              "steps": [{"name": "derivative_channel"}, {"name": "wavelet", "wavelet": "haar", "level": 2}]}
    out = build_signal_features(data, recipe, dataset="ctc")
    assert out["test"]["signals"].shape == (6, 2, 128) and out["sampling_rate"] == 1.0
    assert out["feature_steps"] == recipe["steps"] and torch.equal(data["test"]["signals"], signals)
    with pytest.raises(ValueError, match="signal_features.ctc.sampling_rate"):
        build_signal_features(data, {**recipe, "sampling_rate": None}, dataset="ctc")
    with pytest.raises(ParameterError, match=r"signal_features\.ctc: .*unknown name 'fir'"):
        build_signal_features(data, {**recipe, "steps": [{"name": "fir"}]}, dataset="ctc")


def test_signal_features_pipeline_reads_every_configured_dataset(pipelines):
    import yaml

    from contrastive_signals.pipelines.features.pipeline import SIGNAL_DATASETS

    conf = Path(__file__).resolve().parents[2] / "conf/base/parameters_features.yml"
    recipes = yaml.safe_load(conf.read_text())["signal_features"]
    assert set(recipes) == set(SIGNAL_DATASETS)
    assert pipelines["signal_features"].inputs() == (
        {source for source, _ in SIGNAL_DATASETS.values()} | {f"params:signal_features.{n}" for n in recipes})
    assert pipelines["features"].outputs() >= {"digit_features", "sleep.epoch_features"}
