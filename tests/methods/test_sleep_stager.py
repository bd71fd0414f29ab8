"""The sleep stager's supervised method: window batches, the joint loss for fit, the training
recipe (with and without a pretrained epoch CNN) and staging whole recordings."""

import pytest
import torch

from contrastive_signals.methods.sleep_stager import (
    EncoderFineTuning,
    SleepEvaluationParams,
    SleepStagerMethod,
    SleepStagerParams,
    StagerParams,
    stage_recordings,
    train_sleep_stager,
)
from contrastive_signals.models.registry import build_model, from_bundle
from contrastive_signals.models.sleep import epoch_feature_layers
from contrastive_signals.training.fit import FitConfig
from tests.methods.few_steps import losses_over_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL = StagerParams(base_channels=4, embedding_dim=8, hidden_dim=8, dropout=0.0)
FIT = FitConfig(epochs=1, learning_rate=2e-3, device="cpu", progress=False)
PARAMS = SleepStagerParams(window=4, batch_size=2, model=MODEL, fit=FIT)
STAGES = ["W", "N1", "N2", "N3", "REM"]


def recording(n: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"name": f"r{seed}", "subject": seed, "epochs": torch.randn(n, 3, 3000, generator=generator),
            "labels": torch.randint(0, 5, (n,), generator=generator), "epoch_index": torch.arange(n)}


def test_batches_are_windows_of_consecutive_epochs_reaching_each_recording_end():
    recordings = [recording(9, 0), recording(6, 1)]
    batches = SleepStagerMethod(PARAMS).batches(recordings)
    drawn = list(batches(0, torch.Generator().manual_seed(0)))
    assert all(len(w) <= 2 and w.shape[1:] == (4, 3, 3000) and y.shape[1] == 4 for w, y in drawn)
    starts = set()
    for windows, labels in drawn:
        for window, label in zip(windows, labels, strict=True):
            found = [(i, s) for i, r in enumerate(recordings) for s in range(len(r["labels"]) - 3)
                     if torch.equal(r["epochs"][s:s + 4], window)]
            assert len(found) == 1
            i, start = found[0]
            assert torch.equal(recordings[i]["labels"][start:start + 4], label)
            starts.add(found[0])
    assert {(0, 5), (1, 2)} <= starts                     # the last window ends each recording
    again = list(batches(0, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(drawn, again, strict=True))


def test_one_step_and_the_joint_loss_decreases():
    method = SleepStagerMethod(PARAMS)
    model = method.build(build_model("sleep_stager", {"in_channels": 3, **vars(MODEL)}, seed=0))
    batch = next(iter(method.batches([recording(8, 0)])(0, torch.Generator().manual_seed(0))))
    loss = method.loss(model, batch, torch.Generator())
    assert loss.ndim == 0 and torch.isfinite(loss)
    losses = losses_over_steps(method, model, batch, steps=5, learning_rate=1e-2)
    assert losses[-1] < losses[0]
    assert method.on_epoch_end(model, 0) == {} and method.export(model) is model


def test_training_recipe_bundle_history_and_warm_start():
    train, val = [recording(10, 0), recording(3, 1)], [recording(8, 2)]
    bundle, history = train_sleep_stager(train, val, stages=STAGES, params=PARAMS)
    assert bundle["architecture"] == "sleep_stager" and bundle["window"] == 4
    assert bundle["stages"] == STAGES and bundle["config"]["in_channels"] == 3
    assert {"train_loss", "val_loss", "val_acc", "val_kappa", "lr"} <= set(history)
    assert train_sleep_stager(train, val, stages=STAGES, params=PARAMS)[1] == history
    wrong = epoch_feature_layers(3, base_channels=8)
    with pytest.raises(ValueError, match="do not fit the sleep stager's epoch CNN"):
        train_sleep_stager(train, [], stages=STAGES, params=PARAMS, encoder=wrong)
    with pytest.raises(ValueError, match=r"no training recording holds 4 epochs \(x\.y\.window\)"):
        train_sleep_stager([recording(3, 0)], [], stages=STAGES, params=PARAMS, path="x.y")


def _features(bundle: dict) -> dict[str, torch.Tensor]:
    return {k.removeprefix("encoder.features."): v for k, v in bundle["state_dict"].items()
            if k.startswith("encoder.features.") and "running" not in k and "batches" not in k}


def test_a_pretrained_cnn_stays_frozen_for_its_epochs_then_trains():
    train, val = [recording(10, 0)], [recording(8, 2)]
    pretrained = epoch_feature_layers(3, base_channels=4)
    weights = {k: v for k, v in pretrained.state_dict().items()
               if "running" not in k and "batches" not in k}
    two = SleepStagerParams(window=4, batch_size=2, model=MODEL,
                            fit=FitConfig(epochs=2, learning_rate=2e-3, device="cpu",
                                          progress=False))
    frozen, _ = train_sleep_stager(train, val, stages=STAGES, params=two, encoder=pretrained,
                                   fine_tuning=EncoderFineTuning(frozen_epochs=2))
    assert all(torch.equal(v, weights[k]) for k, v in _features(frozen).items())
    thawed, _ = train_sleep_stager(train, val, stages=STAGES, params=two, encoder=pretrained,
                                   fine_tuning=EncoderFineTuning(frozen_epochs=1))
    assert not all(torch.equal(v, weights[k]) for k, v in _features(thawed).items())
    # from scratch the schedule does not apply: the CNN trains from the first epoch
    scratch, _ = train_sleep_stager(train, val, stages=STAGES, params=two,
                                    fine_tuning=EncoderFineTuning(frozen_epochs=2))
    unfrozen, _ = train_sleep_stager(train, val, stages=STAGES, params=two)
    assert all(torch.equal(v, _features(unfrozen)[k]) for k, v in _features(scratch).items())


def test_the_pretrained_cnn_has_its_own_learning_rate_scale():
    model = build_model("sleep_stager", {"in_channels": 3, **vars(MODEL)}, seed=0)
    assert SleepStagerMethod(PARAMS).param_groups(model) is None
    assert SleepStagerMethod(PARAMS, EncoderFineTuning(lr_scale=0.1)).param_groups(model) is None
    rest, cnn = SleepStagerMethod(PARAMS, EncoderFineTuning(lr_scale=0.1),
                                  [model.encoder.features]).param_groups(model)
    assert cnn["lr_scale"] == 0.1 and "lr_scale" not in rest
    assert {id(p) for p in cnn["params"]} == {id(p) for p in model.encoder.features.parameters()}
    assert len(rest["params"]) + len(cnn["params"]) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="lr_scale must be > 0"):
        EncoderFineTuning(lr_scale=0.0)
    with pytest.raises(ValueError, match="frozen_epochs must be >= 0"):
        EncoderFineTuning(frozen_epochs=-1)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_staging_recordings(decoder):
    model = build_model("sleep_stager", {"in_channels": 3, **vars(MODEL)}, seed=0).eval()
    recordings = [recording(9, 0), recording(3, 1)]
    staged = stage_recordings(model, recordings, window=4,
                              params=SleepEvaluationParams(stride=2, decoder=decoder, beam_width=2))
    for out, source in zip(staged, recordings, strict=True):
        assert out["name"] == source["name"] and torch.equal(out["true"], source["labels"])
        assert out["predicted"].shape == source["labels"].shape
        windows = -(-len(source["labels"]) // 4)
        assert len(out["window_references"]) == len(out["window_hypotheses"]) == windows
        assert all(0 <= s < 5 for w in out["window_hypotheses"] for s in w)
    assert from_bundle({"architecture": "sleep_stager", "config": {"in_channels": 3, **vars(MODEL)},
                        "state_dict": model.state_dict()}) is not None


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="window must be >= 2"):
        SleepStagerParams(window=1)
    with pytest.raises(ValueError, match="not both 0"):
        SleepStagerParams(ce_weight=0.0, ctc_weight=0.0)
    with pytest.raises(ValueError, match="decoder must be one of"):
        SleepEvaluationParams(decoder="viterbi")
