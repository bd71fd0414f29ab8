"""HuBERT-style masked prediction of cluster targets (Hsu et al. 2021), per input channel.

The targets of a frame are, per target group ``g`` (an input channel), the nearest of ``K``
k-means centres of that channel's standardised log band powers in the frame (HuBERT's first
iteration, with hand-made spectral features of each EEG/EOG channel in place of MFCCs). The
prediction is HuBERT's: a projection of the context vector per group, scored by cosine
similarity against learned cluster embeddings divided by a temperature, then cross-entropy.

Shapes: ``B`` sequences, ``C`` channels, ``L`` samples, ``T`` frames, ``G`` target groups,
``F`` features per group, ``K`` clusters, ``M`` masked frames, ``E`` embedding size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastive_signals.losses.wav2vec import perplexities

# Hz: delta (and slow eye movements), theta, alpha, sigma (spindles), beta, high beta, and
# the muscle range; the bands' upper edges must stay below the Nyquist frequency.
DEFAULT_BANDS: tuple[tuple[float, float], ...] = (
    (0.3, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 16.0), (16.0, 30.0), (30.0, 45.0))


def check_bands(bands: tuple[tuple[float, float], ...], *, sampling_rate: float | None = None,
                name: str = "bands") -> None:
    """A ``ValueError`` naming ``name`` when a band is empty, negative or (given the sampling
    rate) reaches past the Nyquist frequency."""
    if not bands:
        raise ValueError(f"{name} must hold at least one (low, high) band in Hz")
    for band in bands:
        if len(band) != 2:
            raise ValueError(f"{name}: every band is a (low, high) pair in Hz, got {band}")
        low, high = band
        if not 0 <= low < high:
            raise ValueError(f"{name}: every band needs 0 <= low < high Hz, got ({low}, {high})")
        if sampling_rate is not None and high > sampling_rate / 2:
            raise ValueError(f"{name}: band ({low}, {high}) Hz reaches past the Nyquist "
                             f"frequency of signals sampled at {sampling_rate} Hz")


def frame_band_powers(x: Tensor, *, frames: int, sampling_rate: float,
                      bands: tuple[tuple[float, float], ...] = DEFAULT_BANDS) -> Tensor:
    """Log band powers ``[B, T, C, len(bands)]`` of ``x`` ``[B, C, L]`` cut into ``T = frames``
    equal chunks (the encoder's frames; a remainder at the end is dropped), each chunk
    Hann-windowed; a band sums the periodogram's bins in ``[low, high)`` Hz."""
    batch, channels, length = x.shape
    chunk = length // frames
    if chunk < 2:
        raise ValueError(f"{length} samples are too few for {frames} frames of band powers")
    pieces = x[..., :frames * chunk].reshape(batch, channels, frames, chunk).transpose(1, 2)
    window = torch.hann_window(chunk, periodic=True, dtype=x.dtype, device=x.device)
    spectrum = torch.fft.rfft(pieces * window, dim=-1).abs() ** 2            # [B, T, C, bins]
    hz = torch.fft.rfftfreq(chunk, d=1.0 / sampling_rate).to(x.device)
    in_band = torch.stack([(hz >= low) & (hz < high) for low, high in bands], dim=-1)
    return torch.log(spectrum @ in_band.to(x.dtype) + 1e-6)


class ClusterTargets:
    """Per target group, k-means centres of standardised features.

    Args:
        mean, std: ``[G, F]`` the features' standardisation.
        centres: ``[G, K, F]`` in standardised units.
    """

    def __init__(self, mean: Tensor, std: Tensor, centres: Tensor) -> None:
        if centres.dim() != 3 or mean.shape != centres.shape[::2] or std.shape != mean.shape:
            raise ValueError(f"cluster targets need mean/std [G, F] and centres [G, K, F], got "
                             f"{tuple(mean.shape)}, {tuple(std.shape)}, {tuple(centres.shape)}")
        self.mean, self.std, self.centres = mean, std, centres

    @classmethod
    def fit(cls, features: Tensor, *, clusters: int, seed: int) -> ClusterTargets:
        """k-means (scikit-learn, ``n_init=4``, ``random_state=seed``) of each group of
        ``features`` ``[N, G, F]`` (frames of training sequences) after standardising it."""
        from sklearn.cluster import KMeans  # only this step needs scikit-learn

        if len(features) < clusters:
            raise ValueError(f"{len(features)} frames are too few for {clusters} clusters")
        mean = features.mean(0)
        std = features.std(0) + 1e-6
        scaled = ((features - mean) / std).double().numpy()
        centres = torch.stack([
            torch.from_numpy(KMeans(clusters, n_init=4, random_state=seed).fit(
                scaled[:, group]).cluster_centers_) for group in range(features.shape[1])])
        return cls(mean, std, centres.to(features.dtype))

    @property
    def clusters(self) -> int:
        return self.centres.shape[1]

    def assign(self, features: Tensor) -> Tensor:
        """The nearest centre ``[..., G]`` int64 of each group of ``features`` ``[..., G, F]``."""
        centres, mean, std = (t.to(features.device, features.dtype)
                              for t in (self.centres, self.mean, self.std))
        scaled = (features - mean) / std
        distances = ((scaled.unsqueeze(-2) - centres) ** 2).sum(-1)          # [..., G, K]
        return distances.argmin(-1)

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean, "std": self.std, "centres": self.centres}

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> ClusterTargets:
        return cls(state["mean"], state["std"], state["centres"])


def cluster_perplexity(labels: Tensor, clusters: int) -> Tensor:
    """Perplexity ``[G]`` of the cluster use in ``labels`` ``[N, G]`` (1: one cluster,
    ``clusters``: uniform)."""
    counts = torch.stack([torch.bincount(labels[:, g], minlength=clusters)
                          for g in range(labels.shape[1])]).float()
    return perplexities(counts / counts.sum(-1, keepdim=True))


def cluster_logits(predicted: Tensor, embeddings: Tensor, *, temperature: float) -> Tensor:
    """Cosine similarity of each prediction ``[M, G, E]`` with its group's cluster embeddings
    ``[G, K, E]``, divided by ``temperature``: logits ``[M, G, K]`` (float32)."""
    return torch.einsum("mge,gke->mgk", F.normalize(predicted.float(), dim=-1),
                        F.normalize(embeddings.float(), dim=-1)) / temperature


def masked_cluster_loss(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy of ``logits`` ``[M, G, K]`` against ``labels`` ``[M, G]``, the mean over
    masked frames and groups, and the accuracy (detached)."""
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    accuracy = (logits.detach().argmax(-1) == labels).float().mean()
    return loss, accuracy
