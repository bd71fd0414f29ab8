"""HuBERT-style per-channel cluster targets in benchmarks/wav2vec_cluster_targets.py: the band
powers, the k-means assignment and the masked prediction loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.wav2vec_cluster_targets import (
    BANDS,
    ClusterPredictor,
    ClusterTargets,
    cluster_losses,
    frame_band_powers,
    teacher_frames,
)
from contrastive_signals.models.registry import build_model
from contrastive_signals.models.wav2vec import Wav2Vec2

FS = 100.0


def test_a_sine_puts_its_power_in_its_own_band_frame_by_frame():
    t = torch.arange(4 * 200) / FS
    x = torch.stack([torch.sin(2 * math.pi * 10.0 * t), torch.sin(2 * math.pi * 1.0 * t)])[None]
    powers = frame_band_powers(x.double(), frames=4, sampling_rate=FS)
    assert powers.shape == (1, 4, 2, len(BANDS))
    alpha = next(i for i, (low, high) in enumerate(BANDS) if low <= 10.0 < high)
    assert (powers[0, :, 0].argmax(-1) == alpha).all()
    assert (powers[0, :, 1].argmax(-1) == 0).all()   # 1 Hz: the lowest band


def test_well_separated_clusters_are_recovered_per_channel():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    which = torch.randint(3, (300, 2), generator=generator)
    features = centres[which] + 0.1 * torch.randn(300, 2, 2, generator=generator)
    targets = ClusterTargets(features, clusters=3, seed=0)
    labels = targets.assign(features[None])[0]                      # [N, C]
    for channel in range(2):  # the same partition, whatever the cluster numbering
        pairs = set(zip(which[:, channel].tolist(), labels[:, channel].tolist(), strict=True))
        assert len(pairs) == 3
    assert targets.usage(labels[None]) == pytest.approx([3.0, 3.0], abs=0.1)


def test_the_loss_is_cross_entropy_of_cosine_logits_over_the_masked_frames():
    torch.manual_seed(0)
    encoder = build_model("sleep_cnn", {"in_channels": 2, "base_channels": 4, "dropout": 0.0}, seed=0)
    w2v = Wav2Vec2(encoder, 8, model_dim=16, ff_dim=32, dropout=0.0)
    model = ClusterPredictor(w2v, groups=2, clusters=5, final_dim=6).eval()
    x = torch.randn(3, 2, 4 * 3000)
    frames = w2v.features(x[:1]).shape[1]
    features = frame_band_powers(x, frames=frames, sampling_rate=FS)
    targets = ClusterTargets(features.flatten(0, 1), clusters=5, seed=0)
    out = cluster_losses(
        model, x, targets=targets, mask_prob=0.5, mask_span=2,
        features_of=lambda x, frames: frame_band_powers(x, frames=frames, sampling_rate=FS),
        generator=torch.Generator().manual_seed(1))

    from contrastive_signals.models.wav2vec import span_mask
    mask = span_mask(3, frames, mask_prob=0.5, span=2, generator=torch.Generator().manual_seed(1))
    labels = targets.assign(features)[mask]                          # [M, C]
    logits = model(x, mask)                                          # [M, C, K]
    # the logits, one (frame, channel) at a time: cosine to each embedding / 0.1
    h = model.head(w2v.contextualise(torch.where(
        mask.unsqueeze(-1), w2v.mask_embedding, w2v.project(w2v.feature_norm(w2v.features(x)))))[mask])
    h = h.view(len(h), 2, 6)
    for m in range(0, len(h), 7):
        for c in range(2):
            expected = F.cosine_similarity(h[m, c][None], model.embeddings[c], dim=-1) / 0.1
            torch.testing.assert_close(logits[m, c], expected, rtol=1e-5, atol=1e-5)
    slow = sum(-torch.log_softmax(logits[m, c], -1)[labels[m, c]]
               for m in range(len(labels)) for c in range(2)) / labels.numel()
    torch.testing.assert_close(out.total, slow, rtol=1e-5, atol=1e-6)
    assert out.parts["accuracy"] == (logits.argmax(-1) == labels).float().mean()


def test_teacher_frames_are_one_target_group_without_gradient():
    teacher = nn.Conv1d(2, 5, kernel_size=4, stride=4)
    x = torch.randn(3, 2, 40)
    out = teacher_frames(teacher)(x, 10)
    assert out.shape == (3, 10, 1, 5) and not out.requires_grad
    torch.testing.assert_close(out[:, :, 0], teacher(x).transpose(1, 2).detach())
