"""HuBERT-style cluster targets and loss (``losses/hubert.py``) against established code:

- the band powers against scipy's Hann-windowed periodogram of each frame;
- the cluster assignment against scikit-learn's ``KMeans.predict`` of the same fit;
- the loss against fairseq's HuBERT (``HubertModel.compute_pred`` / ``compute_nce`` and the
  masked term of ``HubertCriterion``), transcribed below because fairseq does not install with
  this torch: logits ``[positive, every cluster embedding]`` by cosine / temperature, the
  embedding equal to the positive set to ``-inf`` among the negatives, cross-entropy against
  index 0 summed over masked frames, one projection chunk per label set (``untie_final_proj``).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import periodogram
from sklearn.cluster import KMeans

from contrastive_signals.losses.hubert import (
    ClusterTargets,
    check_bands,
    cluster_logits,
    cluster_perplexity,
    frame_band_powers,
    masked_cluster_loss,
)
from contrastive_signals.models.wav2vec import ClusterHead

BANDS = ((0.5, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 30.0))


def test_band_powers_are_scipys_periodogram_summed_over_each_band():
    fs, frames = 100.0, 5
    x = torch.randn(2, 3, 1003, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = frame_band_powers(x, frames=frames, sampling_rate=fs, bands=BANDS)
    assert ours.shape == (2, frames, 3, len(BANDS))
    chunk = 1003 // frames
    window = np.hanning(chunk + 1)[:-1]  # periodic Hann, scipy's get_window("hann") default
    for b, t, c in [(0, 0, 0), (1, 4, 2), (0, 2, 1)]:
        piece = x[b, c, t * chunk:(t + 1) * chunk].numpy()
        hz, density = periodogram(piece, fs=fs, window="hann", detrend=False, scaling="density")
        # undo scipy's scaling: 1 / (fs * sum(w^2)), and the one-sided doubling off DC/Nyquist
        raw = density * fs * (window ** 2).sum()
        raw[1:-1] /= 2
        expected = [np.log(raw[(hz >= low) & (hz < high)].sum() + 1e-6) for low, high in BANDS]
        np.testing.assert_allclose(ours[b, t, c].numpy(), expected, rtol=1e-9)


def test_band_powers_refuse_frames_longer_than_the_signal_and_bad_bands():
    with pytest.raises(ValueError, match="too few for 10 frames"):
        frame_band_powers(torch.zeros(1, 1, 15), frames=10, sampling_rate=100.0)
    with pytest.raises(ValueError, match="cluster_bands: band \\(30.0, 60.0\\) Hz reaches past"):
        check_bands(((1.0, 4.0), (30.0, 60.0)), sampling_rate=100.0, name="cluster_bands")
    with pytest.raises(ValueError, match="low < high"):
        check_bands(((4.0, 1.0),))
    with pytest.raises(ValueError, match="pair"):
        check_bands(((1.0, 2.0, 3.0),))
    with pytest.raises(ValueError, match="at least one"):
        check_bands(())


def test_assignment_is_scikit_learns_prediction_of_the_same_fit():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(400, 2, 4, generator=generator, dtype=torch.float64) * 3 + 1
    targets = ClusterTargets.fit(features, clusters=5, seed=0)
    scaled = ((features - targets.mean) / targets.std).numpy()
    new = torch.randn(7, 9, 2, 4, generator=generator, dtype=torch.float64) * 3 + 1
    labels = targets.assign(new)
    assert labels.shape == (7, 9, 2)
    for group in range(2):
        reference = KMeans(5, n_init=4, random_state=0).fit(scaled[:, group])
        new_scaled = ((new[..., group, :] - targets.mean[group]) / targets.std[group]).reshape(-1, 4)
        np.testing.assert_array_equal(labels[..., group].flatten().numpy(),
                                      reference.predict(new_scaled.numpy()))
    again = ClusterTargets.from_state(targets.state_dict())
    assert torch.equal(again.assign(new), labels)
    with pytest.raises(ValueError, match="3 frames are too few for 5 clusters"):
        ClusterTargets.fit(features[:3], clusters=5, seed=0)


def test_cluster_perplexity_is_one_for_a_single_cluster_and_k_for_uniform_use():
    labels = torch.tensor([[0, 0], [1, 0], [2, 0], [3, 0]])
    assert cluster_perplexity(labels, 4).tolist() == pytest.approx([4.0, 1.0])


def fairseq_compute_pred(proj_x, target, label_embs, logit_temp):
    """fairseq ``HubertModel.compute_pred`` + ``compute_nce`` (one label set): logits
    ``[S, 1 + K]``, the positive first."""
    y = torch.index_select(label_embs, 0, target.long())                 # [S, D]
    negs = label_embs.unsqueeze(1).expand(-1, proj_x.size(0), -1)         # [K, S, D]
    neg_is_pos = (y == negs).all(-1)
    targets = torch.cat([y.unsqueeze(0), negs], dim=0)
    logits = torch.cosine_similarity(proj_x.float(), targets.float(), dim=-1).type_as(proj_x)
    logits = logits / logit_temp
    logits[1:][neg_is_pos] = float("-inf")
    return logits.transpose(0, 1)


def test_the_loss_is_fairseqs_hubert_masked_prediction():
    generator = torch.Generator().manual_seed(0)
    masked, groups, clusters, dim, final = 37, 3, 6, 16, 8
    head = ClusterHead(dim, groups=groups, clusters=clusters, final_dim=final, temperature=0.1)
    context = torch.randn(masked, dim, generator=generator)
    labels = torch.randint(clusters, (masked, groups), generator=generator)
    ours, accuracy = masked_cluster_loss(head(context), labels)
    # fairseq: final_proj output chunked per label set, each with its own label embeddings
    chunks = head.project(context).chunk(groups, dim=-1)
    summed, correct = 0.0, 0
    for g in range(groups):
        logits = fairseq_compute_pred(chunks[g], labels[:, g], head.embeddings[g], 0.1)
        summed = summed + F.cross_entropy(logits, torch.zeros(masked, dtype=torch.long),
                                          reduction="sum")
        correct += int((logits.argmax(-1) == 0).sum())
    # fairseq sums over frames and label sets; ours is the mean over both
    torch.testing.assert_close(ours, summed / (masked * groups), rtol=1e-5, atol=1e-6)
    assert float(accuracy) == pytest.approx(correct / (masked * groups))
    ours.backward()
    assert head.embeddings.grad is not None and head.project.weight.grad.abs().sum() > 0


def test_logits_are_cosines_over_the_temperature():
    predicted = torch.tensor([[[2.0, 0.0]]])
    embeddings = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    assert cluster_logits(predicted, embeddings, temperature=0.5).tolist() == [[[2.0, 0.0, -2.0]]]
