"""The `wav2vec` pipeline run with SequentialRunner on tiny synthetic nights (the EDF+ files
really are written to and read back from a temporary folder), plus its nodes' checks."""

import copy
import logging

import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.io.sleep_edf_dataset import SleepEdfDataset, SyntheticSleepEdfDataset
from contrastive_signals.methods.label_efficiency import LabelEfficiencyParams
from contrastive_signals.methods.wav2vec import Wav2VecPretraining
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.pipelines.wav2vec import create_pipeline
from contrastive_signals.pipelines.wav2vec.nodes import (
    pretrain_sleep_wav2vec,
    run_label_efficiency,
    summarise_label_efficiency,
)
from contrastive_signals.training.checkpoint import CheckpointPolicy, checkpointing
from contrastive_signals.training.epoch_observers import observing_epochs
from tests.conf_parameters import conf_parameters
from tests.pipelines.kept_memory import KeptMemoryDataset

FIT = {"epochs": 1, "learning_rate": 0.002, "device": "cpu", "progress": False}
PARAMS = {
    "synthetic": {"n_subjects": 4, "sleep_hours": 0.4, "wake_before_minutes": 32.0,
                  "wake_after_minutes": 32.0, "seed": 0},
    "ingestion": {"split": {"val_subjects": 1, "test_subjects": 1, "seed": 0}},
    "pretraining": {"segment_epochs": 2, "batch_size": 3, "val_batches": 1, "steps_per_epoch": 2,
                    "num_threads": 1,
                    "method": {"model": {"model_dim": 8, "heads": 2, "ff_dim": 16, "layers": 1,
                                         "codebook_entries": 4, "code_dim": 8, "final_dim": 8},
                               "objective": {"num_negatives": 3, "cross_sample_negatives": 2}},
                    "fit": {**FIT, "epochs": 2, "grad_clip_norm": 5.0, "max_nonfinite_steps": 10}},
    "label_efficiency": {"fractions": [0.5, 1.0], "epochs": [1, 1], "seeds": [0, 1],
                         "training": {"window": 6, "batch_size": 4, "val_stride": 6,
                                      "num_threads": 1, "fit": FIT,
                                      "model": {"base_channels": 4, "embedding_dim": 8,
                                                "hidden_dim": 8}},
                         "evaluation": {"stride": 3, "num_threads": 1}},
}
KEPT = ("wav2vec.epochs", "wav2vec.split", "wav2vec.encoder", "wav2vec.label_efficiency",
        "wav2vec.history")


@pytest.fixture(scope="module")
def w2v_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("sleep_edf_w2v")
    datasets = {
        "wav2vec.synthetic_edf": SyntheticSleepEdfDataset(folder=str(folder)),
        "wav2vec.edf_recordings": SleepEdfDataset(folder=str(folder), keep_wake_minutes=10.0),
        **{name: KeptMemoryDataset() for name in KEPT},
        **{f"params:wav2vec.{key}": MemoryDataset(value) for key, value in PARAMS.items()},
    }
    catalog = DataCatalog(datasets=datasets)
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    torch.set_num_threads(threads)
    loaded = {n: v.load() if hasattr(v, "load") else v for n, v in outputs.items()}
    return folder, {**loaded, **{name: catalog.load(name) for name in KEPT}}


def test_reports_every_metric_for_both_inits_and_fractions(w2v_run):
    folder, out = w2v_run
    assert len(list(folder.glob("SC4??1E0-PSG.edf"))) == 4
    metrics = out["ts_sleep_metrics"]
    assert out["wav2vec_metrics"] == metrics
    for init in ("w2v", "scratch"):
        for fraction in ("50pc", "100pc"):
            for metric in ("cer", "macro_f1", "epoch_acc", "kappa"):
                name = f"sleep.{init}_{fraction}.{metric}"
                assert name in metrics and f"{name}.std" in metrics
                assert metrics[f"{name}.std"] >= 0
            assert 0 <= metrics[f"sleep.{init}_{fraction}.macro_f1"] <= 1
    assert metrics["sleep.w2v_50pc.n_recordings"] == 1.0       # 2 training subjects
    assert metrics["sleep.w2v_100pc.n_recordings"] == 2.0
    assert out["wav2vec_metrics_mlflow"] == {k: {"value": v, "step": 0} for k, v in metrics.items()}
    assert isinstance(out["wav2vec.label_efficiency_plot"], Figure)


def test_pretraining_curves_and_runs(w2v_run):
    _, out = w2v_run
    history = out["wav2vec.history"]
    for key in ("train_loss", "contrastive", "diversity", "prob_perplexity", "code_perplexity",
                "temperature", "val_loss", "val_code_perplexity", "nonfinite_steps"):
        assert len(history[key]) == 2, key
    assert history["temperature"][-1] == pytest.approx(0.5)       # gumbel_end at the last step
    assert {"wav2vec.train_loss", "wav2vec.code_perplexity"} <= set(out["wav2vec.history_metrics"])
    assert out["wav2vec.encoder"]["architecture"] == "sleep_cnn"
    runs = out["wav2vec.label_efficiency"]["runs"]
    assert len(runs) == 2 * 2 * 2
    for seed in (0, 1):  # both inits train on the same subset for a seed
        subsets = {tuple(r["recordings"]) for r in runs if r["seed"] == seed and r["fraction"] == 0.5}
        assert len(subsets) == 1
    train = set(out["wav2vec.split"]["train"]["recordings"])
    assert all(set(r["recordings"]) <= train for r in runs)


def test_a_fixed_subset_and_a_frozen_pretrained_cnn(w2v_run):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    params = {**PARAMS["label_efficiency"], "fractions": [0.5], "epochs": [1], "subset": "fixed",
              "fine_tuning": {"frozen_epochs": 1}}
    runs = run_label_efficiency(epochs, split, out["wav2vec.encoder"], params)["runs"]
    assert len(runs) == 4 and len({tuple(r["recordings"]) for r in runs}) == 1
    per_seed = [r for r in out["wav2vec.label_efficiency"]["runs"]
                if r["fraction"] == 0.5 and r["seed"] == 0]
    assert runs[0]["recordings"] == per_seed[0]["recordings"]   # the first seed's nights
    with pytest.raises(ParameterError, match=r"wav2vec\.label_efficiency: subset must be one of"):
        run_label_efficiency(epochs, split, out["wav2vec.encoder"],
                             {**PARAMS["label_efficiency"], "subset": "stratified"})
    with pytest.raises(ParameterError, match=r"wav2vec\.label_efficiency\.fine_tuning: lr_scale"):
        run_label_efficiency(epochs, split, out["wav2vec.encoder"],
                             {**PARAMS["label_efficiency"], "fine_tuning": {"lr_scale": 0}})


def test_the_bundle_is_the_stagers_epoch_cnn(w2v_run):
    _, out = w2v_run
    encoder = from_bundle(out["wav2vec.encoder"], modality="signal", outputs=("frames",))
    assert set(encoder.state_dict()) and all(
        k.startswith(("0.", "1.", "5.", "6.", "8.", "9.")) for k in encoder.state_dict())
    assert out["wav2vec.encoder"]["config"] == {"in_channels": 3, "dropout": 0.0,
                                                "base_channels": 4, "channel_wise_stem": False}
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    with pytest.raises(ValueError, match="unknown architecture 'sleep_stager' for signal data "
                                         "with output frames"):
        run_label_efficiency(epochs, split, {"architecture": "sleep_stager", "config": {},
                                             "state_dict": {}}, PARAMS["label_efficiency"])


def test_nodes_do_not_mutate_and_bad_parameters_are_named(w2v_run):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    before = copy.deepcopy(out["wav2vec.label_efficiency"])
    summarise_label_efficiency(out["wav2vec.label_efficiency"])
    assert out["wav2vec.label_efficiency"] == before
    with pytest.raises(ParameterError, match=r"wav2vec\.label_efficiency: epochs needs one value"):
        run_label_efficiency(epochs, split, out["wav2vec.encoder"],
                             {**PARAMS["label_efficiency"], "epochs": [1]})
    pretraining = PARAMS["pretraining"]
    with pytest.raises(ParameterError, match=r"wav2vec\.pretraining\.method\.objective: mask_prob"):
        pretrain_sleep_wav2vec(epochs, split, {**pretraining, "method": {"objective": {"mask_prob": 0}}},
                               PARAMS["label_efficiency"])
    with pytest.raises(ParameterError, match=r"wav2vec\.pretraining: segment_epochs"):
        pretrain_sleep_wav2vec(epochs, split, {**pretraining, "segment_epochs": 0},
                               PARAMS["label_efficiency"])
    no_skipping = {**pretraining, "fit": {**pretraining["fit"], "max_nonfinite_steps": None}}
    with pytest.raises(ParameterError, match=r"wav2vec\.pretraining: fit\.grad_clip_norm and "
                                             r"fit\.max_nonfinite_steps must be set"):
        pretrain_sleep_wav2vec(epochs, split, no_skipping, PARAMS["label_efficiency"])
    with pytest.raises(ValueError, match=r"no recording holds 99 epochs "
                                         r"\(wav2vec\.pretraining\.segment_epochs\)"):
        pretrain_sleep_wav2vec(epochs, split, {**pretraining, "segment_epochs": 99},
                               PARAMS["label_efficiency"])


def test_pipeline_nodes_are_named():
    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == {
        "wav2vec.generate_synthetic_recordings", "wav2vec.build_epochs", "wav2vec.split_subjects",
        "wav2vec.pretrain", "wav2vec.fine_tune_label_efficiency", "wav2vec.summarise",
        "wav2vec.plot_label_efficiency"}
    assert {"ts_sleep_metrics", "wav2vec_metrics"} <= pipeline.all_outputs()


def test_a_channel_wise_stem_is_pretrained_and_warm_starts_the_stager(w2v_run):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    label_params = copy.deepcopy(PARAMS["label_efficiency"])
    label_params["training"]["model"]["channel_wise_stem"] = True
    bundle, _, _ = pretrain_sleep_wav2vec(epochs, split, PARAMS["pretraining"], label_params)
    assert bundle["config"]["channel_wise_stem"] is True
    stem = from_bundle(bundle, modality="signal", outputs=("frames",))[0]
    assert stem.groups == 3 and stem.weight.shape == (6, 1, 50)   # ceil(4 / 3) per channel
    runs = run_label_efficiency(epochs, split, bundle,
                                {**label_params, "fractions": [1.0], "epochs": [1], "seeds": [0]})
    assert {r["init"] for r in runs["runs"]} == {"w2v", "scratch"}
    with pytest.raises(ValueError, match="do not fit the sleep stager's epoch CNN"):
        run_label_efficiency(epochs, split, bundle, {**PARAMS["label_efficiency"],
                                                     "fractions": [1.0], "epochs": [1]})


def test_the_context_network_is_pretrained_and_fine_tuned_with_the_stager(w2v_run):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    label_params = copy.deepcopy(PARAMS["label_efficiency"])
    pretraining = PARAMS["pretraining"]
    context = {"model_dim": 8, "heads": 2, "ff_dim": 16, "layers": 1}
    label_params["training"]["model"].update(frame_context=context, context_epochs=2)
    bundle, _, _ = pretrain_sleep_wav2vec(epochs, split, pretraining, label_params)
    assert bundle["architecture"] == "sleep_cnn_context"
    assert bundle["config"]["frame_context"]["model_dim"] == 8
    assert any(key.startswith("context.transformer.") for key in bundle["state_dict"])
    runs = run_label_efficiency(epochs, split, bundle,
                                {**label_params, "fractions": [1.0], "epochs": [1], "seeds": [0]})
    assert {r["init"] for r in runs["runs"]} == {"w2v", "scratch"}
    # a stager whose context network differs from the pretraining's fails before training
    label_params["training"]["model"]["frame_context"] = {**context, "ff_dim": 32}
    with pytest.raises(ParameterError, match=r"frame_context .*'ff_dim': 32.* must equal the "
                                             r"context network it fine-tunes"):
        pretrain_sleep_wav2vec(epochs, split, pretraining, label_params)
    label_params["training"]["model"]["context_epochs"] = 0
    with pytest.raises(ParameterError, match=r"training\.model: context_epochs must be >= 1"):
        pretrain_sleep_wav2vec(epochs, split, pretraining, label_params)


def test_the_wav2vec_context_env_fine_tunes_the_pretrained_context_network():
    """conf/wav2vec_context over conf/base: valid parameters, a context network equal to the
    pretraining's, read over runs of the pretraining's segment length, 80 epochs at 10 %, after
    40 pretraining epochs of both targets (twice the cluster term)."""
    params = conf_parameters("wav2vec_context")["wav2vec"]
    stager = from_params(LabelEfficiencyParams, params["label_efficiency"],
                         path="wav2vec.label_efficiency")
    pretraining = from_params(Wav2VecPretraining, params["pretraining"],
                              path="wav2vec.pretraining")
    assert stager.training.model.frame_context == pretraining.method.model.frame_context()
    assert stager.training.model.context_epochs == pretraining.segment_epochs
    assert dict(zip(stager.fractions, stager.epochs, strict=True))[0.1] == 80
    assert stager.training.model.channel_wise_stem  # the rest of conf/base is kept
    objective = pretraining.method.objective
    assert (objective.targets, objective.cluster_weight) == ("quantizer+clusters", 2.0)
    assert pretraining.fit.epochs == 40 and objective.clusters == 32
    assert pretraining.method.model.codebook_entries == 256  # conf/base's quantiser


def test_runs_trained_in_worker_processes_equal_one_at_a_time(w2v_run):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    parallel = run_label_efficiency(epochs, split, out["wav2vec.encoder"],
                                    {**PARAMS["label_efficiency"], "workers": 2})
    assert parallel == out["wav2vec.label_efficiency"]  # same order, same figures, bit for bit


def test_worker_runs_checkpoint_as_their_place_in_the_order_and_resume_here(w2v_run, tmp_path,
                                                                            caplog):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    params = {**PARAMS["label_efficiency"], "fractions": [1.0], "epochs": [1]}
    policy = CheckpointPolicy(folder=tmp_path, every_minutes=None)
    with checkpointing(policy, key="wav2vec.fine_tune", fingerprint="f") as folder:
        parallel = run_label_efficiency(epochs, split, out["wav2vec.encoder"],
                                        {**params, "workers": 2})
    assert sorted(p.name for p in folder.glob("fit*.pt")) == ["fit0.pt", "fit1.pt", "fit2.pt",
                                                             "fit3.pt"]
    with caplog.at_level(logging.INFO, logger="contrastive_signals.training.fit"), \
            checkpointing(policy, key="wav2vec.fine_tune", fingerprint="f"):
        resumed = run_label_efficiency(epochs, split, out["wav2vec.encoder"], params)
    assert resumed == parallel
    assert [r.getMessage().split(":")[0] for r in caplog.records if "resumed from" in r.getMessage()
            ] == [f"sleep_{init}_100pc_seed{seed}" for seed in (0, 1) for init in ("w2v", "scratch")]


def test_workers_auto_counts_cores_per_run_and_bad_values_are_named(w2v_run, monkeypatch):
    import contrastive_signals.methods.label_efficiency as label_efficiency

    monkeypatch.setattr(label_efficiency, "available_cores", lambda: 4)
    config = from_params(LabelEfficiencyParams, {**PARAMS["label_efficiency"], "workers": "auto"},
                         path="wav2vec.label_efficiency")
    assert label_efficiency.resolve_workers(config, runs=8) == 4       # 1 thread a run
    assert label_efficiency.resolve_workers(config, runs=3) == 3
    two_threads = copy.deepcopy(PARAMS["label_efficiency"])
    two_threads["training"]["num_threads"] = 2
    assert label_efficiency.resolve_workers(
        from_params(LabelEfficiencyParams, {**two_threads, "workers": "auto"}, path="p"), runs=8) == 2
    two_threads["training"]["num_threads"] = None              # threads as the run set them
    assert label_efficiency.resolve_workers(
        from_params(LabelEfficiencyParams, {**two_threads, "workers": "auto"}, path="p"), runs=8) == 1
    assert label_efficiency.resolve_workers(
        from_params(LabelEfficiencyParams, {**two_threads, "workers": 16}, path="p"), runs=8) == 8
    _, out = w2v_run
    for bad, message in [(0, ": workers must be an integer >= 1 or 'auto'"),
                         (-1, ": workers must be an integer >= 1 or 'auto'"),
                         (True, r"\.workers must be int or str"),
                         ("all", ": workers must be an integer >= 1 or 'auto'"),
                         (1.5, r"\.workers must be int or str")]:
        with pytest.raises(ParameterError, match=r"wav2vec\.label_efficiency" + message):
            run_label_efficiency(out["wav2vec.epochs"], out["wav2vec.split"],
                                 out["wav2vec.encoder"], {**PARAMS["label_efficiency"],
                                                          "workers": bad})


def test_runs_watched_by_an_epoch_observer_train_here(w2v_run):
    _, out = w2v_run
    seen = []
    params = {**PARAMS["label_efficiency"], "fractions": [1.0], "epochs": [1], "seeds": [0],
              "workers": 2}
    with observing_epochs(lambda name, epoch, values: seen.append(name)):
        run_label_efficiency(out["wav2vec.epochs"], out["wav2vec.split"], out["wav2vec.encoder"],
                             params)
    assert seen == ["sleep_w2v_100pc_seed0", "sleep_scratch_100pc_seed0"]


def test_cluster_targets_pretrain_from_the_node_and_bad_bands_are_named(w2v_run):
    _, out = w2v_run
    epochs, split = out["wav2vec.epochs"], out["wav2vec.split"]
    pretraining = copy.deepcopy(PARAMS["pretraining"])
    pretraining["method"]["objective"].update(targets="clusters", clusters=4,
                                              cluster_fit_batches=2)
    bundle, history, _ = pretrain_sleep_wav2vec(epochs, split, pretraining,
                                                PARAMS["label_efficiency"])
    assert bundle["architecture"] == "sleep_cnn"
    for key in ("cluster_cross_entropy", "cluster_accuracy", "target_perplexity",
                "val_cluster_cross_entropy"):
        assert len(history[key]) == 2, key
    assert "code_perplexity" not in history
    runs = run_label_efficiency(epochs, split, bundle, {**PARAMS["label_efficiency"],
                                                        "fractions": [1.0], "epochs": [1],
                                                        "seeds": [0]})
    assert {r["init"] for r in runs["runs"]} == {"w2v", "scratch"}
    pretraining["method"]["objective"]["cluster_bands"] = [[0.5, 4.0], [30.0, 60.0]]
    with pytest.raises(ValueError, match=r"wav2vec\.pretraining\.method\.objective: "
                                         r"cluster_bands: band \(30\.0, 60\.0\) Hz reaches past "
                                         r"the Nyquist frequency of signals sampled at 100\.0 Hz"):
        pretrain_sleep_wav2vec(epochs, split, pretraining, PARAMS["label_efficiency"])
