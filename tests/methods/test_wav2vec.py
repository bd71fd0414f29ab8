"""The wav2vec method: its network around a registered frame encoder, its loss for fit, the
Gumbel temperature schedule (skipped steps count), non-finite steps skipped by fit and the
error after too many, the collapse warning, validation and the exported encoder."""

import logging
import re
from dataclasses import replace

import pytest
import torch

from contrastive_signals.methods.wav2vec import (
    ContextParams,
    FrameContextParams,
    Wav2VecMethod,
    Wav2VecObjective,
    Wav2VecParams,
    Wav2VecPretraining,
    check_fit,
    pretrain_on_recordings,
)
from contrastive_signals.models.registry import build_model
from contrastive_signals.models.sleep import SleepStager, load_encoder_features
from contrastive_signals.models.wav2vec import gumbel_temperature
from contrastive_signals.training.fit import FitConfig, LossOutput, fit
from tests.methods.few_steps import losses_over_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONV = {"in_channels": 3, "layers": [[8, 10, 5], [8, 3, 2], [8, 3, 2]]}  # 800 samples: 39 frames
CONTEXT = ContextParams(model_dim=16, ff_dim=32, codebook_entries=8, code_dim=16, final_dim=16,
                        layers=1, dropout=0.0)
OBJECTIVE = Wav2VecObjective(mask_prob=0.5, mask_span=2, num_negatives=4, cross_sample_negatives=2)
PARAMS = Wav2VecParams(model=CONTEXT, objective=OBJECTIVE)
LOGGED = ("train_loss", "contrastive", "diversity", "feature_penalty", "accuracy",
          "prob_perplexity", "code_perplexity")


def method(total_steps: int = 6, params: Wav2VecParams = PARAMS) -> Wav2VecMethod:
    return Wav2VecMethod(params, total_steps=total_steps)


def fit_config(epochs: int = 2, max_nonfinite_steps: int = 10) -> FitConfig:
    return FitConfig(epochs=epochs, learning_rate=1e-3, grad_clip_norm=1.0, progress=False,
                     device="cpu", max_nonfinite_steps=max_nonfinite_steps, name="wav2vec")


def batches_of(x: torch.Tensor, steps: int = 3, batch: int = 4):
    return Wav2VecMethod.batches(
        lambda count, generator: x[torch.randint(len(x), (count,), generator=generator)],
        batch_size=batch, steps=steps)


def signals(n: int = 12) -> torch.Tensor:
    return torch.randn(n, 3, 800, generator=torch.Generator().manual_seed(0))


def test_build_seeded_draws_the_encoder_first_and_leaves_the_global_state_alone():
    state = torch.get_rng_state()
    model = method().build_seeded("w2v_conv", CONV, seed=3)
    again = method().build_seeded("w2v_conv", CONV, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    encoder = build_model("w2v_conv", CONV, seed=3)
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.feature_encoder.state_dict()[key], value)
    assert model.project.in_features == 8 and model.quantizer.entries == 8


def test_encoders_that_do_not_give_frames_are_refused():
    with pytest.raises(ValueError, match=r"method 'wav2vec' needs an encoder of signal data with "
                                         r"output frames; 'curve_cnn'.*\['sleep_cnn', 'sleep_cnn_context', 'w2v_conv'\]"):
        method().build_seeded("curve_cnn", {"in_channels": 3}, seed=0)


@pytest.mark.parametrize("targets", ["quantizer", "clusters", "quantizer+clusters"])
def test_every_parameter_gets_a_gradient_at_every_step_whatever_the_targets(targets):
    """What ``uses_every_parameter`` promises DDP (it then does not search for unused ones)."""
    m = method(params=replace(CLUSTERS, objective=replace(CLUSTERS.objective, targets=targets)))
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    if m.clusters:
        m.fit_targets(model, signals(), sampling_rate=100.0, seed=0)
    assert m.uses_every_parameter
    for step in range(3):
        model.zero_grad(set_to_none=True)
        m.loss(model, (signals(4),), torch.Generator().manual_seed(step)).total.backward()
        assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_one_step_gives_the_logged_parts_and_the_loss_decreases():
    m = method()
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    out = m.loss(model, (signals(4),), torch.Generator().manual_seed(0))
    assert isinstance(out, LossOutput) and out.total.ndim == 0
    assert set(out.parts) == set(LOGGED) - {"train_loss"}
    assert m.steps == 1 and m.temperature == OBJECTIVE.gumbel_start
    losses = losses_over_steps(m, model, (signals(4),), steps=6, learning_rate=3e-3)
    assert losses[-1] < losses[0]


def test_fit_history_temperature_and_reproducibility():
    x = signals()

    def run():
        m = method()
        model = m.build_seeded("w2v_conv", CONV, seed=0)
        validate = m.validation([x[:4]], seed=0)
        return fit(model, loss_fn=m.loss, batches=batches_of(x), config=fit_config(),
                   validate=validate, hooks=m)

    result = run()
    history = result.history
    for key in (*LOGGED, "temperature", "lr", "nonfinite_steps", "val_loss", "val_contrastive",
                "val_code_perplexity"):
        assert len(history[key]) == 2, key
    # the temperature of each epoch's last step: step 2 of 6, then step 5 (the end value)
    assert history["temperature"] == [gumbel_temperature(2, total_steps=6, start=2.0, end=0.5),
                                      pytest.approx(0.5)]
    assert all(1.0 <= p <= 8.0 for p in history["code_perplexity"])
    assert history["nonfinite_steps"] == [0.0, 0.0]
    assert not result.model.training
    assert run().history == history


def poisoned(x: torch.Tensor, bad_steps: set[int], steps: int):
    """Batches of ``x`` where the steps in ``bad_steps`` (0-based within each epoch) hold NaN."""
    def batches(epoch, generator):
        for step in range(steps):
            batch = x[torch.randint(len(x), (4,), generator=generator)]
            yield (torch.full_like(batch, float("nan")) if step in bad_steps else batch,)
    return batches


def test_non_finite_steps_are_skipped_and_still_advance_the_temperature(caplog):
    m = method(total_steps=8)
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    with caplog.at_level(logging.WARNING):
        result = fit(model, loss_fn=m.loss, batches=poisoned(signals(), {1}, steps=4),
                     config=fit_config(), hooks=m)
    assert "skipped" in caplog.text
    assert result.history["nonfinite_steps"] == [1.0, 1.0]
    assert m.steps == 8                                  # every step counts, skipped ones too
    assert result.history["temperature"][-1] == pytest.approx(0.5)
    resumed = method(total_steps=8)
    resumed.load_state_dict(m.state_dict())
    assert (resumed.steps, resumed.temperature) == (8, m.temperature)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_too_many_non_finite_steps_stop_the_run_without_an_update():
    m = method()
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match=r"3 steps with a non-finite loss or gradient "
                                                 r"\(more than max_nonfinite_steps=2\)"):
        fit(model, loss_fn=m.loss, batches=poisoned(signals(), {0, 1, 2}, steps=3),
            config=fit_config(max_nonfinite_steps=2), hooks=m)
    assert m.steps == 3
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_codebook_collapse_is_reported(caplog):
    m = method(params=Wav2VecParams(model=CONTEXT, objective=OBJECTIVE, collapse_perplexity=100.0))
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    with caplog.at_level(logging.WARNING):
        fit(model, loss_fn=m.loss, batches=batches_of(signals(), steps=2),
            config=fit_config(epochs=1), hooks=m)
    assert "codebook collapse suspected" in caplog.text


def test_guards_and_parameters_are_checked():
    with pytest.raises(ValueError, match="grad_clip_norm and fit.max_nonfinite_steps must be set"):
        check_fit(FitConfig(epochs=1, learning_rate=1e-3, max_nonfinite_steps=3))
    with pytest.raises(ValueError, match="max_nonfinite_steps must be set"):
        Wav2VecPretraining(fit=FitConfig(epochs=1, learning_rate=1e-3, grad_clip_norm=1.0))
    with pytest.raises(ValueError, match="segment_epochs, batch_size and steps_per_epoch"):
        Wav2VecPretraining(segment_epochs=0)
    with pytest.raises(ValueError, match="divisible by heads"):
        ContextParams(model_dim=10, heads=4)
    with pytest.raises(ValueError, match="mask_prob"):
        Wav2VecObjective(mask_prob=0.0)
    with pytest.raises(ValueError, match="total_steps"):
        Wav2VecMethod(PARAMS, total_steps=0)


def test_export_with_context_hands_over_the_pretrained_context_network():
    m = method()
    model = m.build_seeded("sleep_cnn", {"in_channels": 3, "base_channels": 4}, seed=0).eval()
    state = torch.get_rng_state()
    exported = m.export(model, context=True).eval()
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left alone
    assert exported.features is model.feature_encoder
    x = torch.randn(2, 3, 3000)
    # the pretraining's unmasked path: encoder, norm, projection, positional conv, Transformer
    expected = model.contextualise(model.project(model.feature_norm(model.features(x))))
    torch.testing.assert_close(exported(x).transpose(1, 2), expected)
    frame_context = {"model_dim": 16, "layers": 1, "heads": 4, "ff_dim": 32, "dropout": 0.0}
    assert CONTEXT.frame_context() == FrameContextParams(**frame_context)
    stager = SleepStager(3, base_channels=4, embedding_dim=8, hidden_dim=8,
                         frame_context=frame_context).eval()
    loaded = load_encoder_features(stager, exported)
    assert loaded == [stager.encoder.features, stager.encoder.context]
    torch.testing.assert_close(stager.encoder.context(model.features(x)),
                               expected)
    without = SleepStager(3, base_channels=4, embedding_dim=8, hidden_dim=8)
    with pytest.raises(ValueError, match="has a context network but the sleep stager has none"):
        load_encoder_features(without, exported)
    other = SleepStager(3, base_channels=4, embedding_dim=8, hidden_dim=8,
                        frame_context={**frame_context, "model_dim": 8, "heads": 2})
    with pytest.raises(ValueError, match="frame_context must match"):
        load_encoder_features(other, exported)


def test_export_warm_starts_the_sleep_stager():
    m = method()
    model = m.build_seeded("sleep_cnn", {"in_channels": 3, "base_channels": 4}, seed=0)
    encoder = m.export(model)
    assert encoder is model.feature_encoder
    stager = SleepStager(3, base_channels=4, embedding_dim=8, hidden_dim=8)
    load_encoder_features(stager, encoder)
    for key, value in encoder.state_dict().items():
        assert torch.equal(stager.encoder.features.state_dict()[key], value)
    wrong = SleepStager(3, base_channels=8, embedding_dim=8, hidden_dim=8)
    with pytest.raises(ValueError, match="base_channels"):
        load_encoder_features(wrong, encoder)


# ---- targets: clusters (HuBERT-style, per channel) ------------------------------------------

CLUSTERS = Wav2VecParams(model=CONTEXT, objective=Wav2VecObjective(
    mask_prob=0.5, mask_span=2, targets="clusters", clusters=4,
    cluster_bands=((0.5, 4.0), (4.0, 12.0), (12.0, 40.0))))
SLEEP_CNN = {"in_channels": 3, "base_channels": 4}


def test_cluster_targets_replace_the_quantiser_and_their_loss_decreases():
    m = method(params=CLUSTERS)
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    assert not hasattr(model, "quantizer") and model.cluster_head.embeddings.shape == (3, 4, 16)
    assert m.uses_every_parameter
    with pytest.raises(RuntimeError, match="fit_targets before training"):
        m.loss(model, (signals(4),), torch.Generator().manual_seed(0))
    usage = m.fit_targets(model, signals(), sampling_rate=100.0, seed=0)
    assert len(usage) == 3 and all(1.0 < u <= 4.0 for u in usage)
    out = m.loss(model, (signals(4),), torch.Generator().manual_seed(0))
    assert set(out.parts) == {"cluster_cross_entropy", "feature_penalty", "cluster_accuracy",
                              "target_perplexity"}
    # the objective's total: cross-entropy plus the weighted feature penalty
    torch.testing.assert_close(out.total, out.parts["cluster_cross_entropy"]
                               + CLUSTERS.objective.feature_penalty_weight
                               * out.parts["feature_penalty"])
    losses = losses_over_steps(m, model, (signals(4),), steps=6, learning_rate=3e-3)
    assert losses[-1] < losses[0]
    # every parameter gets a gradient: nothing is left for DDP to search for
    model.zero_grad()
    m.loss(model, (signals(4),), torch.Generator().manual_seed(0)).total.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fitting_the_targets_leaves_batch_norm_statistics_and_training_mode_alone():
    m = method(params=CLUSTERS)
    model = m.build_seeded("sleep_cnn", SLEEP_CNN, seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m.fit_targets(model, torch.randn(4, 3, 3000), sampling_rate=100.0, seed=0)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cluster_fit_history_is_reproducible_and_the_state_carries_the_targets():
    x = signals()

    def run():
        m = method(params=CLUSTERS)
        model = m.build_seeded("w2v_conv", CONV, seed=0)
        m.fit_targets(model, x, sampling_rate=100.0, seed=0)
        result = fit(model, loss_fn=m.loss, batches=batches_of(x), config=fit_config(),
                     validate=m.validation([x[:4]], seed=0), hooks=m)
        return m, result

    m, result = run()
    for key in ("train_loss", "cluster_cross_entropy", "cluster_accuracy", "target_perplexity",
                "val_loss", "val_cluster_accuracy"):
        assert len(result.history[key]) == 2 and all(v == v for v in result.history[key]), key
    assert "temperature" not in result.history and "code_perplexity" not in result.history
    assert run()[1].history == result.history
    restored = method(params=CLUSTERS)
    restored.load_state_dict(m.state_dict())
    features = torch.randn(5, 3, 3)
    assert torch.equal(restored.targets.assign(features), m.targets.assign(features))
    assert restored.sampling_rate == 100.0 and restored.steps == m.steps == 6


def test_cluster_parameters_are_checked_before_training():
    with pytest.raises(ValueError, match="targets must be one of"):
        Wav2VecObjective(targets="kmeans")
    with pytest.raises(ValueError, match="clusters must be >= 2"):
        Wav2VecObjective(clusters=1)
    with pytest.raises(ValueError, match="cluster_bands: every band needs 0 <= low < high"):
        Wav2VecObjective(cluster_bands=((8.0, 4.0),))
    assert Wav2VecObjective(cluster_bands=[[1, 2]]).cluster_bands == ((1.0, 2.0),)
    m = method(params=CLUSTERS)
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    with pytest.raises(ValueError, match=r"cluster_bands: band \(12.0, 40.0\) Hz reaches past "
                                         r"the Nyquist frequency of signals sampled at 50.0 Hz"):
        m.fit_targets(model, signals(), sampling_rate=50.0, seed=0)
    with pytest.raises(ValueError, match="needs the encoder's in_channels"):
        m.build(model.feature_encoder, feature_dim=8)


@pytest.mark.parametrize("targets", ["clusters", "quantizer+clusters"])
def test_cluster_targets_without_a_sampling_rate_are_refused_before_training(targets):
    recordings = [{"epochs": torch.randn(4, 3, 800), "labels": torch.zeros(4, dtype=torch.long)}
                  for _ in range(2)]
    params = Wav2VecPretraining(segment_epochs=2, batch_size=2, steps_per_epoch=1,
                                method=replace(CLUSTERS, objective=replace(
                                    CLUSTERS.objective, targets=targets)),
                                fit=fit_config(epochs=1))
    with pytest.raises(ValueError, match=rf"pretraining\.method\.objective\.targets: "
                                         rf"{re.escape(targets)} needs the recordings' sampling"):
        pretrain_on_recordings(recordings, [], params=params, architecture="w2v_conv",
                               encoder_config=CONV)


def test_a_cluster_pretrained_context_network_warm_starts_the_stager():
    m = method(params=CLUSTERS)
    model = m.build_seeded("sleep_cnn", SLEEP_CNN, seed=0)
    m.fit_targets(model, torch.randn(4, 3, 3000), sampling_rate=100.0, seed=0)
    exported = m.export(model, context=True).eval()
    stager = SleepStager(3, base_channels=4, embedding_dim=8, hidden_dim=8,
                         frame_context={"model_dim": 16, "layers": 1, "heads": 4, "ff_dim": 32,
                                        "dropout": 0.0}).eval()
    assert load_encoder_features(stager, exported) == [stager.encoder.features,
                                                       stager.encoder.context]
    x = torch.randn(2, 3, 3000)
    torch.testing.assert_close(stager.encoder.context(stager.encoder.features(x).transpose(1, 2)),
                               exported(x).transpose(1, 2))


def test_quantizer_and_cluster_targets_add_both_losses_in_one_pass():
    both = Wav2VecParams(model=CONTEXT, objective=replace(CLUSTERS.objective,
                                                          targets="quantizer+clusters",
                                                          cluster_weight=0.5))
    m = method(params=both)
    model = m.build_seeded("w2v_conv", CONV, seed=0)
    assert hasattr(model, "quantizer") and hasattr(model, "cluster_head")
    assert m.quantizer and m.clusters and m.uses_every_parameter
    m.fit_targets(model, signals(), sampling_rate=100.0, seed=0)
    out = m.loss(model, (signals(4),), torch.Generator().manual_seed(0))
    parts = out.parts
    assert {"contrastive", "diversity", "code_perplexity", "cluster_cross_entropy",
            "cluster_accuracy"} <= set(parts)
    objective = both.objective
    torch.testing.assert_close(out.total, parts["contrastive"]
                               + objective.diversity_weight * parts["diversity"]
                               + objective.feature_penalty_weight * parts["feature_penalty"]
                               + 0.5 * parts["cluster_cross_entropy"])
    # the quantiser's terms are those of the quantiser-only objective with the same draws
    alone = method(params=Wav2VecParams(model=CONTEXT, objective=replace(
        CLUSTERS.objective, targets="quantizer")))
    quantizer_model = alone.build_seeded("w2v_conv", CONV, seed=0)
    quantizer_model.load_state_dict({k: v for k, v in model.state_dict().items()
                                     if not k.startswith("cluster_head.")})
    reference = alone.loss(quantizer_model, (signals(4),), torch.Generator().manual_seed(0))
    for key in ("contrastive", "diversity", "accuracy", "code_perplexity"):
        torch.testing.assert_close(parts[key], reference.parts[key])
    losses = losses_over_steps(m, model, (signals(4),), steps=6, learning_rate=3e-3)
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="cluster_weight must be > 0"):
        Wav2VecObjective(cluster_weight=0.0)
    with pytest.raises(ValueError, match="needs the quantiser, a cluster head or both"):
        from contrastive_signals.models.wav2vec import Wav2Vec2
        Wav2Vec2(model.feature_encoder, 8, quantizer=False)
