"""The CTC method: fresh segment-sequence batches, the CTC loss for fit, the frame check,
validation and test scores."""

import pytest
import torch

from contrastive_signals.data.segment_sequences import SegmentSequenceSpec, make_segment_sequences
from contrastive_signals.methods.ctc import (
    CTCMethod,
    CTCTrainParams,
    SequenceModelParams,
    ctc_test_scores,
    frame_posteriors,
    greedy_cer_validation,
)
from contrastive_signals.models.registry import build_model
from tests.methods.few_steps import losses_over_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = SegmentSequenceSpec(length=160, min_segment=20, max_segment=60)
MODEL = SequenceModelParams(architecture="ctc_cnn", channels=8, kernel_size=5, downsample=8,
                            num_layers=3)
PARAMS = CTCTrainParams(model=MODEL, batch_size=4, steps_per_epoch=3)


def network():
    return build_model("ctc_cnn", MODEL.model_config(in_channels=1, num_classes=3), seed=0)


def test_batches_are_fresh_sequences_from_the_generator():
    batches = CTCMethod(PARAMS, SPEC).batches()
    drawn = list(batches(0, torch.Generator().manual_seed(0)))
    assert len(drawn) == 3
    signals, targets, lengths = drawn[0]
    assert signals.shape == (4, 1, 160) and targets.shape == (4, SPEC.max_segments)
    assert lengths.shape == (4,) and not torch.equal(drawn[0][0], drawn[1][0])
    again = list(batches(0, torch.Generator().manual_seed(0)))
    assert torch.equal(again[2][0], drawn[2][0])


def test_one_step_and_the_ctc_loss_decreases():
    method = CTCMethod(PARAMS, SPEC)
    model = method.build(network())
    batch = next(iter(method.batches()(0, torch.Generator().manual_seed(0))))
    loss = method.loss(model, batch, torch.Generator())
    assert loss.ndim == 0 and loss > 0
    losses = losses_over_steps(method, model, batch, steps=5, learning_rate=1e-2)
    assert losses[-1] < losses[0]


def test_validation_scores_and_posteriors():
    data = make_segment_sequences(6, spec=SPEC, generator=torch.Generator().manual_seed(1))
    model = network()
    values = greedy_cer_validation(data)(model)
    assert set(values) == {"val_loss", "val_cer"} and values["val_cer"] >= 0
    scores = ctc_test_scores(model, data, beam_width=2)
    assert set(scores) == {"cer", "cer_beam", "substitutions", "deletions", "insertions"}
    probs, decoded = frame_posteriors(model, data["signals"][:1])
    assert probs.shape == (20, 4) and torch.allclose(probs.sum(1), torch.ones(20))
    assert all(1 <= label <= 3 for label in decoded)


def test_too_coarse_downsampling_is_explained():
    fine = SegmentSequenceSpec(length=160, min_segment=10, max_segment=40)
    with pytest.raises(ValueError, match=r"m\.downsample=16 leaves 10 output frames for up to 16"):
        SequenceModelParams(downsample=16).check_frames(fine, name="m")
    MODEL.check_frames(SPEC, name="m")
    with pytest.raises(ValueError, match="fit.monitor"):
        CTCTrainParams(fit=PARAMS.fit.__class__(epochs=1, learning_rate=1e-3, monitor="acc"))
