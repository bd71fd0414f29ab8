"""Scale and noise of the AFM derivative channel against the force channel, from the features
of a default ``kedro run --pipeline=afm`` (no training; seconds of CPU):

    python benchmarks/afm_derivative_scale.py [data/04_feature/afm_deriv_features.pt]

Prints each channel's overall std, its noise (far region of the no-event curves) and the size
of each class's events beyond contact in units of that noise, and the same for
Savitzky-Golay derivatives (``scipy.signal.savgol_filter(deriv=1)``) of the force channel.
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.signal
import torch

from contrastive_signals.data.afm_simulator import AFM_CLASSES


def main(path: str = "data/04_feature/afm_deriv_features.pt") -> None:
    features = torch.load(path, weights_only=False)
    x = features["curves"].numpy().astype(np.float64)        # [N, 2, L]: force, derivative
    y = features["labels"].numpy()
    force, deriv = x[:, 0], x[:, 1]
    length = force.shape[-1]
    far = slice(int(0.75 * length), length)                   # baseline + noise only
    beyond = slice(int(0.1 * length), length)                 # contact aligned at 5 %
    print(f"curves {x.shape}; overall std force {force.std():.3f}, derivative "
          f"{deriv.std():.3f} (ratio {deriv.std() / force.std():.3f})")
    noise_f = np.median(force[y == 0][:, far].std(axis=1))
    noise_d = np.median(deriv[y == 0][:, far].std(axis=1))
    print(f"noise (no_event, far 25 %, median per-curve std): force {noise_f:.4f}, "
          f"derivative {noise_d:.4f}")
    for c, name in enumerate(AFM_CLASSES):
        sel = y == c
        span = np.median(np.ptp(force[sel][:, beyond], axis=1))
        peak = np.median(np.abs(deriv[sel][:, beyond]).max(axis=1))
        print(f"{name:22s} n={sel.sum():4d}: force range beyond contact {span:.3f} "
              f"({span / noise_f:.1f} x noise); max|derivative| {peak:.3f} "
              f"({peak / noise_d:.1f} x noise)")
    single = y == list(AFM_CLASSES).index("single_rupture")
    for window in (5, 7, 11):
        smooth = scipy.signal.savgol_filter(force, window, 2, deriv=1, axis=-1, mode="interp")
        noise_s = np.median(smooth[y == 0][:, far].std(axis=1))
        peak = np.median(np.abs(smooth[single][:, beyond]).max(axis=1))
        print(f"savgol window {window:2d}, order 2: noise {noise_s:.4f}; single rupture "
              f"max|d| {peak:.3f} ({peak / noise_s:.1f} x noise)")


if __name__ == "__main__":
    main(*sys.argv[1:])
