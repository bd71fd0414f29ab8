"""Checkpoints of the training loop: a fit stopped after a checkpoint and started again ends
bit-identical to an uninterrupted fit; stale or foreign checkpoints are not used."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from contrastive_signals.config import from_params
from contrastive_signals.methods.series import SeriesPretrainParams, pretrain_series
from contrastive_signals.training import checkpoint as ckpt
from contrastive_signals.training.checkpoint import (
    CheckpointPolicy,
    checkpointing,
    open_fit_checkpoint,
    remove_checkpoints,
)
from contrastive_signals.training.fit import FitConfig, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

X = torch.randn(24, 5, generator=torch.Generator().manual_seed(0))
Y = X @ torch.randn(5, 1, generator=torch.Generator().manual_seed(1))


class Killed(BaseException):
    """Stands for a kill right after a checkpoint was written."""


class CountingHooks:
    """Method state that changes the loss: a counter of steps, saved in checkpoints."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, model, step):
        self.steps += 1

    def on_epoch_end(self, model, epoch):
        return {"hook_steps": float(self.steps)}

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


def _model() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))


def _train(hooks=None, *, epochs=6, patience=None):
    model, hooks = _model(), hooks or CountingHooks()

    def batches(epoch, generator):
        order = torch.randperm(len(X), generator=generator)
        return [(X[order[i:i + 8]], Y[order[i:i + 8]]) for i in range(0, len(X), 8)]

    def loss(net, batch, generator):
        noise = 0.01 * torch.randn(batch[0].shape, generator=generator)
        return nn.functional.mse_loss(net(batch[0] + noise), batch[1]) * (1 + 1e-3 * hooks.steps)

    def validate(net):
        return {"val_loss": float(nn.functional.mse_loss(net(X), Y))}

    config = FitConfig(epochs=epochs, learning_rate=1e-2, progress=False, name="probe",
                       early_stopping_patience=patience, warmup_epochs=1)
    with torch.random.fork_rng():
        torch.manual_seed(7)  # dropout draws from the global generator, as in a fresh process
        return fit(model, loss_fn=loss, batches=batches, config=config, validate=validate,
                   hooks=hooks)


def _kill_after_saves(monkeypatch, count: int) -> None:
    """The ``count``-th checkpoint write is followed by a 'kill'."""
    original, writes = ckpt.FitCheckpoint.save, []

    def save(self, state):
        original(self, state)
        writes.append(1)
        if len(writes) == count:
            raise Killed

    monkeypatch.setattr(ckpt.FitCheckpoint, "save", save)


def _assert_same(first, second):
    assert first.history == second.history
    assert first.best_epoch == second.best_epoch
    for (name, a), b in zip(first.model.state_dict().items(),
                            second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("patience", [None, 2])
def test_a_killed_fit_resumes_bit_identical(tmp_path, monkeypatch, caplog, patience):
    reference = _train(patience=patience)
    policy = CheckpointPolicy(tmp_path, every_epochs=1, every_minutes=None)
    with monkeypatch.context() as patch:
        _kill_after_saves(patch, 2)
        with pytest.raises(Killed), checkpointing(policy, key="node", fingerprint="p"):
            _train(patience=patience)
    assert (tmp_path / "node" / "p" / "fit0.pt").exists()
    with caplog.at_level(logging.INFO), checkpointing(policy, key="node", fingerprint="p"):
        resumed = _train(patience=patience)
    assert "probe: resumed from" in caplog.text and "after epoch 2" in caplog.text
    _assert_same(resumed, reference)


def test_a_finished_fit_is_not_trained_again(tmp_path, caplog):
    policy = CheckpointPolicy(tmp_path, every_epochs=None, every_minutes=None)
    with checkpointing(policy, key="node", fingerprint="p"):
        first = _train()
    with caplog.at_level(logging.INFO), checkpointing(policy, key="node", fingerprint="p"):
        again = _train()
    assert "(training had finished)" in caplog.text
    _assert_same(again, first)
    remove_checkpoints(tmp_path, "node", "p")
    assert not (tmp_path / "node").exists()


def test_a_checkpoint_of_other_parameters_is_not_used(tmp_path, monkeypatch, caplog):
    reference = _train()
    policy = CheckpointPolicy(tmp_path, every_epochs=1, every_minutes=None)
    with monkeypatch.context() as patch:
        _kill_after_saves(patch, 1)
        with pytest.raises(Killed), checkpointing(policy, key="node", fingerprint="lr=0.1"):
            _train()
    with caplog.at_level(logging.INFO), checkpointing(policy, key="node", fingerprint="lr=0.2"):
        fresh = _train()
    assert "are of other parameters or inputs (lr=0.1) and are not used" in caplog.text
    assert "resumed" not in caplog.text
    _assert_same(fresh, reference)


def test_a_checkpoint_of_other_fit_settings_is_not_used(tmp_path, monkeypatch, caplog):
    policy = CheckpointPolicy(tmp_path, every_epochs=1, every_minutes=None)
    with monkeypatch.context() as patch:
        _kill_after_saves(patch, 1)
        with pytest.raises(Killed), checkpointing(policy, key="node", fingerprint="p"):
            _train(epochs=6)
    with caplog.at_level(logging.INFO), checkpointing(policy, key="node", fingerprint="p"):
        fresh = _train(epochs=5)
    assert "not used: its fit settings differ(s) from this run's" in caplog.text
    _assert_same(fresh, _train(epochs=5))


def test_removing_spares_a_checkpoint_another_process_holds(tmp_path):
    with checkpointing(CheckpointPolicy(tmp_path), key="n", fingerprint="p"):
        held = open_fit_checkpoint(_model(), FitConfig(epochs=1, learning_rate=1e-3))
    held.save({"loop": {"epoch": 0}})
    try:
        remove_checkpoints(tmp_path, "n", "p")
        assert (tmp_path / "n" / "p" / "fit0.pt").exists()
    finally:
        held.release()
    remove_checkpoints(tmp_path, "n", "p")
    assert not (tmp_path / "n").exists()


def test_resume_off_starts_over(tmp_path, monkeypatch, caplog):
    with monkeypatch.context() as patch:
        _kill_after_saves(patch, 1)
        with pytest.raises(Killed), checkpointing(
                CheckpointPolicy(tmp_path, every_epochs=1), key="n", fingerprint="p"):
            _train()
    with caplog.at_level(logging.INFO), checkpointing(
            CheckpointPolicy(tmp_path, every_epochs=1, resume=False), key="n", fingerprint="p"):
        _train()
    assert "resumed" not in caplog.text


def test_a_series_method_with_weight_averaging_and_its_own_streams_resumes(tmp_path, monkeypatch):
    """TS2Vec: numpy and torch streams of its own, dropout from the global generator, SWA."""
    x = torch.randn(8, 12, 1, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(8, 12, dtype=torch.bool)
    params = SeriesPretrainParams(encoder={"output_dim": 8, "hidden_dim": 4, "depth": 1,
                                           "dropout": 0.2}, iterations=6, batch_size=4)
    reference, reference_fit = pretrain_series(x, mask, params, name="ts2vec")
    policy = CheckpointPolicy(tmp_path, every_epochs=1, every_minutes=None)
    with monkeypatch.context() as patch:
        _kill_after_saves(patch, 1)
        with pytest.raises(Killed), checkpointing(policy, key="n", fingerprint="p"):
            pretrain_series(x, mask, params, name="ts2vec")
    with checkpointing(policy, key="n", fingerprint="p"):
        resumed, resumed_fit = pretrain_series(x, mask, params, name="ts2vec")
    assert resumed_fit.history == reference_fit.history
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_in_use_by_another_run_is_left_alone(tmp_path, caplog):
    policy = CheckpointPolicy(tmp_path)
    config = FitConfig(epochs=1, learning_rate=1e-3)
    with checkpointing(policy, key="n", fingerprint="p"):
        held = open_fit_checkpoint(_model(), config)
    assert held is not None
    try:
        with caplog.at_level(logging.WARNING), checkpointing(policy, key="n", fingerprint="p"):
            assert open_fit_checkpoint(_model(), config) is None
        assert "in use by another run" in caplog.text
    finally:
        held.release()


def test_a_failed_write_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    policy = CheckpointPolicy(tmp_path)
    with checkpointing(policy, key="n", fingerprint="p"):
        store = open_fit_checkpoint(_model(), FitConfig(epochs=1, learning_rate=1e-3))
    store.save({"loop": {"epoch": 1}})
    before = (tmp_path / "n" / "p" / "fit0.pt").read_bytes()

    def broken_save(obj, file):
        file.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        store.save({"loop": {"epoch": 2}})
    store.release()
    assert (tmp_path / "n" / "p" / "fit0.pt").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "n" / "p").iterdir()) == ["fit0.lock", "fit0.pt"]


def test_a_write_cut_by_a_kill_is_deleted_by_the_next_holder_and_by_the_cleanup(tmp_path):
    """SIGKILL during ``save`` leaves its temporary file (no ``finally`` runs): the next
    process that takes the checkpoint deletes it, and so does the cleanup after the node's
    outputs are saved, which then removes the whole folder."""
    policy = CheckpointPolicy(tmp_path)
    folder = tmp_path / "n" / "p"
    with checkpointing(policy, key="n", fingerprint="p"):
        store = open_fit_checkpoint(_model(), FitConfig(epochs=1, learning_rate=1e-3))
        other = open_fit_checkpoint(nn.Linear(2, 2), FitConfig(epochs=1, learning_rate=1e-3))
    store.save({"loop": {"epoch": 1}})
    other.save({"loop": {"epoch": 1}})
    other.release()
    cut = folder / ".fit0.x1y2.tmp"  # what a kill in the middle of the next write leaves
    cut.write_bytes(b"partial")
    foreign = folder / ".fit1.a1b2.tmp"  # another fit's: left to its own lock's holder
    foreign.write_bytes(b"partial")
    store.release()
    with checkpointing(policy, key="n", fingerprint="p"):
        resumed = open_fit_checkpoint(_model(), FitConfig(epochs=1, learning_rate=1e-3))
    assert resumed.load()["loop"] == {"epoch": 1} and not cut.exists() and foreign.exists()
    resumed.release()
    cut.write_bytes(b"partial")
    remove_checkpoints(tmp_path, "n", "p")
    assert not (tmp_path / "n").exists()


def test_outside_a_scope_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _train(epochs=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("field", "value"), [("every_epochs", 0), ("every_epochs", True),
                                              ("every_minutes", 0.0)])
def test_bad_policy_values_are_refused(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        CheckpointPolicy(tmp_path, **{field: value})


def test_wav2vec_with_cluster_targets_resumes_bit_identical(tmp_path, monkeypatch):
    """The k-means targets are part of the method's checkpointed state; a killed run resumes
    to the uninterrupted run's history and weights."""
    from contrastive_signals.methods.wav2vec import Wav2VecPretraining, pretrain_on_recordings

    generator = torch.Generator().manual_seed(0)
    recordings = [{"epochs": torch.randn(6, 3, 3000, generator=generator),
                   "labels": torch.zeros(6, dtype=torch.long)} for _ in range(3)]
    params = from_params(Wav2VecPretraining, {
        "segment_epochs": 2, "batch_size": 3, "val_batches": 1, "steps_per_epoch": 2,
        "num_threads": 1,
        "method": {"model": {"model_dim": 8, "heads": 2, "ff_dim": 16, "layers": 1},
                   "objective": {"targets": "clusters", "clusters": 3, "cluster_fit_batches": 2,
                                 "cluster_bands": [[0.5, 4.0], [4.0, 12.0]]}},
        "fit": {"epochs": 3, "learning_rate": 0.002, "device": "cpu", "progress": False,
                "grad_clip_norm": 5.0, "max_nonfinite_steps": 10}}, path="pretraining")

    def run():
        return pretrain_on_recordings(recordings[:2], recordings[2:], params=params,
                                      architecture="sleep_cnn", sampling_rate=100.0,
                                      encoder_config={"in_channels": 3, "base_channels": 4})

    reference, reference_history = run()
    policy = CheckpointPolicy(tmp_path, every_epochs=1, every_minutes=None)
    with monkeypatch.context() as patch:
        _kill_after_saves(patch, 1)
        with pytest.raises(Killed), checkpointing(policy, key="w", fingerprint="p"):
            run()
    with checkpointing(policy, key="w", fingerprint="p"):
        resumed, resumed_history = run()
    assert resumed_history == reference_history and len(resumed_history["val_cluster_accuracy"]) == 3
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
