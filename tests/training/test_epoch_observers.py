"""The training loop hands each epoch's validation values to an observer (a sweep's pruner),
which may stop the fit by raising; without an observer nothing changes."""

from __future__ import annotations

import pytest

from contrastive_signals.training.epoch_observers import observing_epochs, report_epoch
from tests.training.test_fit import train_linear


class Stop(Exception):
    pass


def test_observer_sees_every_validated_epoch_with_the_fit_name():
    seen = []
    with observing_epochs(lambda name, epoch, values: seen.append((name, epoch, values))):
        result = train_linear(seed=0, epochs=4, name="probe")
    assert [(name, epoch) for name, epoch, _ in seen] == [("probe", e) for e in range(4)]
    assert [values["val_loss"] for *_, values in seen] == result.history["val_loss"]


def test_an_observer_that_raises_stops_training_after_that_epoch():
    epochs = []

    def prune(name, epoch, values):
        epochs.append(epoch)
        if epoch == 1:
            raise Stop("pruned")

    with observing_epochs(prune), pytest.raises(Stop):
        train_linear(seed=0, epochs=10)
    assert epochs == [0, 1]


def test_no_observer_outside_the_block_and_same_result():
    seen = []
    with observing_epochs(lambda *args: seen.append(args)):
        observed = train_linear(seed=3, epochs=3)
    plain = train_linear(seed=3, epochs=3)
    report_epoch("x", 0, {"val_loss": 1.0})  # nobody listens: no error
    assert len(seen) == 3
    assert plain.history == observed.history
