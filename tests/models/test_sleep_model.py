"""The sleep stager (CNN + BiLSTM with CTC and per-epoch heads), its windows, loss and
inference, the sleep metrics and the hypnogram plot."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from contrastive_signals.metrics.sleep import count_transitions, sleep_staging_metrics
from contrastive_signals.models.registry import build_model, from_bundle, get_entry, to_bundle
from contrastive_signals.models.sleep import (
    BLANK,
    SleepStager,
    collapse_repeats,
    joint_loss,
    predict_recording,
    window_starts,
)
from contrastive_signals.plots.hypnogram import hypnogram_figure

SMALL = {"in_channels": 3, "num_stages": 5, "base_channels": 4, "embedding_dim": 16,
         "hidden_dim": 8}


# Tiny models: one torch thread (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def model() -> SleepStager:
    return build_model("sleep_stager", SMALL, seed=0).eval()


def test_registered_and_forward_shapes(model):
    assert get_entry("sleep_stager").factory is SleepStager
    epoch_logits, ctc_logits = model(torch.randn(2, 7, 3, 3000))
    assert epoch_logits.shape == (2, 7, 5) and ctc_logits.shape == (2, 7, 6)


def test_bundle_round_trip(model):
    bundle = to_bundle(model, "sleep_stager", SMALL)
    rebuilt = from_bundle(bundle)
    x = torch.randn(1, 4, 3, 3000)
    torch.testing.assert_close(rebuilt(x)[0], model(x)[0])


def test_same_seed_same_weights():
    a, b = build_model("sleep_stager", SMALL, seed=3), build_model("sleep_stager", SMALL, seed=3)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


@pytest.mark.parametrize(("labels", "collapsed"), [
    ([0, 0, 1, 2, 2, 0], [0, 1, 2, 0]), ([3], [3]), ([], []), ([4, 4, 4], [4]),
])
def test_collapse_repeats(labels, collapsed):
    assert collapse_repeats(labels) == collapsed
    assert collapse_repeats(torch.tensor(labels, dtype=torch.long)) == collapsed


@pytest.mark.parametrize(("n", "window", "stride", "offset"), [
    (100, 20, 20, 0), (100, 20, 10, 0), (101, 20, 20, 7), (20, 20, 5, 0), (7, 20, 10, 0), (45, 20, 20, 19),
])
def test_window_starts_cover_every_epoch_from_the_offset(n, window, stride, offset):
    starts = window_starts(n, window=window, stride=stride, offset=offset)
    assert starts == sorted(set(starts))
    if n <= window:
        assert starts == [0]
        return
    assert all(0 <= s <= n - window for s in starts) and starts[-1] == n - window
    covered = set().union(*(range(s, s + window) for s in starts))
    assert set(range(min(offset, n - window), n)) <= covered


def test_joint_loss_is_the_weighted_sum_of_ce_and_ctc():
    torch.manual_seed(0)
    epoch_logits, ctc_logits = torch.randn(2, 6, 5), torch.randn(2, 6, 6)
    labels = torch.tensor([[0, 0, 1, 1, 2, 2], [3, 3, 3, 3, 3, 4]])
    ce = F.cross_entropy(epoch_logits.flatten(0, 1), labels.flatten())
    # CTC by hand: targets are the collapsed sequences shifted past the blank.
    ctc = F.ctc_loss(F.log_softmax(ctc_logits, -1).transpose(0, 1), torch.tensor([1, 2, 3, 4, 5]),
                     torch.tensor([6, 6]), torch.tensor([3, 2]), blank=BLANK)
    total = joint_loss(epoch_logits, ctc_logits, labels, ce_weight=0.7, ctc_weight=0.3)
    torch.testing.assert_close(total, 0.7 * ce + 0.3 * ctc)
    torch.testing.assert_close(joint_loss(epoch_logits, ctc_logits, labels, ce_weight=1.0, ctc_weight=0.0), ce)


def test_frame_wise_stage_path_is_a_cheap_ctc_alignment():
    """Emitting the stage at every frame (no blank) collapses to the target, so confident
    frame-wise logits give a CTC loss near 0 (why the blank starts unlikely)."""
    labels = torch.tensor([[0, 0, 1, 1, 1, 4]])
    ctc_logits = torch.full((1, 6, 6), -10.0)
    ctc_logits[0, torch.arange(6), labels[0] + 1] = 10.0
    loss = joint_loss(torch.zeros(1, 6, 5), ctc_logits, labels, ce_weight=0.0, ctc_weight=1.0)
    assert loss.item() < 1e-3


def test_blank_starts_unlikely(model):
    _, ctc_logits = model(torch.randn(1, 5, 3, 3000))
    blank = ctc_logits.softmax(-1)[..., BLANK]
    assert (blank < 0.2).all()


def test_joint_loss_backward_reaches_every_parameter():
    net = build_model("sleep_stager", SMALL, seed=0).train()
    labels = torch.tensor([[0, 1, 1, 2], [2, 2, 3, 3]])
    loss = joint_loss(*net(torch.randn(2, 4, 3, 3000)), labels, ce_weight=1.0, ctc_weight=0.5)
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("n", [3, 20, 47])
def test_predict_recording_covers_every_epoch(model, n):
    epochs = torch.randn(n, 3, 3000)
    probs, ctc = predict_recording(model, epochs, window=10, stride=5, batch_size=4)
    assert probs.shape == (n, 5)
    torch.testing.assert_close(probs.sum(1), torch.ones(n))
    assert [len(c) for c in ctc] == [10] * (n // 10) + ([n % 10] if n % 10 else [])
    assert all(c.shape[1] == 6 for c in ctc)
    assert not model.training


def test_predict_recording_matches_one_window_pass(model):
    epochs = torch.randn(10, 3, 3000)
    probs, _ = predict_recording(model, epochs, window=10, stride=5)
    with torch.no_grad():
        torch.testing.assert_close(probs, model(epochs[None])[0][0].softmax(-1))


# ---------------------------------------------------------------- metrics


def test_count_transitions():
    assert count_transitions([0, 0, 1, 1, 2, 0]) == 3
    assert count_transitions([2]) == 0 and count_transitions([]) == 0


def test_perfect_predictions_score_perfectly():
    true = [np.array([0, 0, 1, 2, 2, 3, 4]), np.array([0, 2, 2])]
    refs = [[0, 1, 2], [3, 4], [0, 2]]
    metrics = sleep_staging_metrics(true, [t.copy() for t in true], refs, refs)
    assert metrics == {"epoch_acc": 1.0, "macro_f1": 1.0, "kappa": 1.0, "cer": 0.0,
                       "transitions_abs_err": 0.0}


def test_metrics_by_hand():
    true = [np.array([0, 0, 2, 2]), np.array([1, 1, 1, 1])]
    pred = [np.array([0, 2, 2, 2]), np.array([1, 0, 1, 1])]
    # window refs [0, 2] and [1]; hypotheses [0, 2] (right) and [1, 0, 1] (two insertions)
    metrics = sleep_staging_metrics(true, pred, [[0, 2], [1]], [[0, 2], [1, 0, 1]])
    assert metrics["epoch_acc"] == pytest.approx(6 / 8)
    assert metrics["cer"] == pytest.approx(2 / 3)
    # transitions: true 1 and 0, predicted 1 and 2 -> errors 0 and 2
    assert metrics["transitions_abs_err"] == pytest.approx(1.0)
    # F1 per class: W 1/2, N1 6/7, N2 4/5 -> macro mean
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 6 / 7 + 4 / 5) / 3)
    assert -1.0 <= metrics["kappa"] < 1.0


def test_metrics_reject_mismatched_inputs():
    with pytest.raises(ValueError, match="one prediction per recording"):
        sleep_staging_metrics([np.array([0])], [], [[0]], [[0]])


# ---------------------------------------------------------------- plot


def test_hypnogram_figure():
    true = np.array([0, 0, 1, 2, 3, 3, 2, 4, 4, 0])
    fig = hypnogram_figure(true, np.roll(true, 1), stage_names=("W", "N1", "N2", "N3", "REM"),
                           title="t", epoch_index=np.arange(10) * 2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["N3", "N2", "N1", "REM", "W"]
    with pytest.raises(ValueError, match="equal length"):
        hypnogram_figure(true, true[:3], stage_names=("W", "N1", "N2", "N3", "REM"), title="t")


def test_predict_recording_without_ctc_gives_the_same_probabilities(model):
    epochs = torch.randn(23, 3, 3000)
    probs, ctc = predict_recording(model, epochs, window=10, stride=5, batch_size=4)
    only, none = predict_recording(model, epochs, window=10, stride=5, batch_size=4, ctc=False)
    torch.testing.assert_close(only, probs, rtol=0, atol=0)
    assert none == [] and len(ctc) == 3


def test_channel_wise_stem_filters_each_channel_on_its_own():
    config = {**SMALL, "channel_wise_stem": True}
    model = build_model("sleep_stager", config, seed=0).eval()
    stem = model.encoder.features[0]
    # ceil(4 / 3) = 2 filters per input channel, each seeing only its own channel
    assert stem.groups == 3 and stem.weight.shape == (6, 1, 50)
    x = torch.randn(1, 2, 3, 3000)
    epoch_logits, ctc_logits = model(x)
    assert epoch_logits.shape == (1, 2, 5) and ctc_logits.shape == (1, 2, 6)
    changed = x.clone()
    changed[:, :, 2] += torch.randn(1, 2, 3000)  # only the third channel changes
    before, after = stem(x.flatten(0, 1)), stem(changed.flatten(0, 1))
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])
    rebuilt = from_bundle(to_bundle(model, "sleep_stager", config))
    torch.testing.assert_close(rebuilt(x)[0], epoch_logits)


CONTEXT = {"model_dim": 8, "layers": 1, "heads": 2, "ff_dim": 16, "dropout": 0.0}


@pytest.mark.parametrize(("context_epochs", "moved"), [
    (1, [False, False, False, True, False]),   # each epoch alone: only the changed one
    (2, [False, False, True, True, False]),    # runs 0-1, 2-3 and the rest, 4
    (3, [False, False, False, True, True]),    # runs 0-2 and the rest, 3-4
    (5, [True, True, True, True, True]),       # the whole window
    (9, [True, True, True, True, True]),       # longer than the window: the whole window
])
def test_frame_context_reads_runs_of_consecutive_epochs(context_epochs, moved):
    config = {**SMALL, "frame_context": CONTEXT, "context_epochs": context_epochs}
    model = build_model("sleep_stager", config, seed=0).eval()
    assert model.encoder.project[0].in_features == 2 * CONTEXT["model_dim"]
    x = torch.randn(2, 5, 3, 3000)
    epoch_logits, ctc_logits = model(x)
    assert epoch_logits.shape == (2, 5, 5) and ctc_logits.shape == (2, 5, 6)
    changed = x.clone()
    changed[0, 3] += torch.randn(3, 3000)  # the fourth epoch of the first window only
    before = model.encoder.encode_windows(x, context_epochs=context_epochs)
    after = model.encoder.encode_windows(changed, context_epochs=context_epochs)
    assert ((before - after).abs().amax(-1) > 1e-6).tolist() == [moved, [False] * 5]
    per_epoch = model.encoder.encode_windows(x, context_epochs=1)   # = each epoch on its own
    torch.testing.assert_close(model.encoder(x.flatten(0, 1)), per_epoch.flatten(0, 1))
    rebuilt = from_bundle(to_bundle(model, "sleep_stager", config))
    torch.testing.assert_close(rebuilt(x)[0], epoch_logits)


def test_a_context_run_shorter_than_one_epoch_is_refused():
    with pytest.raises(ValueError, match="context_epochs must be >= 1"):
        SleepStager(3, frame_context=CONTEXT, context_epochs=0)
