"""The key figures of each pipeline's report, by their stable names (README "Figures and their
names"): what `make run-all` (scripts/run_all.py) summarises and notebooks/compare_runs.ipynb
tabulates. Patterns are ``fnmatch`` patterns, so that one entry covers a figure per dataset or
per view count (``ts.*.best.svm.acc``, ``denoise.unet.v*.psnr``), whatever the sizes."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

#: registered pipeline -> patterns of its key figures, most important first. `sleep` runs
#: inside `ctc` (and alone); its figures are part of `ctc`'s report.
KEY_FIGURES: dict[str, tuple[str, ...]] = {
    "__default__": ("simclr.linear_probe.acc", "simclr.linear_probe_10pc.acc",
                    "raw.linear_probe_10pc.acc", "triplet_scratch.knn.acc",
                    "triplet_scratch.recall_at_1", "supervised.test.acc",
                    "simclr_vit.linear_probe.acc", "supervised_vit.test.acc"),
    "ctc": ("ctc_cnn.cer", "ctc_bilstm.cer", "sleep.epoch_acc", "sleep.macro_f1", "sleep.kappa"),
    "sleep": ("sleep.epoch_acc", "sleep.macro_f1", "sleep.kappa"),
    "afm": ("afm.single_rupture.f1", "afm.macro_f1", "afm.find_peaks.single_rupture.f1",
            "afm.supervised_cnn.single_rupture.f1"),
    "timeseries": ("ts.*.best.svm.acc", "mnist1d.simclr.linear.acc", "mnist1d.supervised.acc",
                   "sleep.w2v_10pc.cer", "sleep.scratch_10pc.cer"),
    "denoising": ("denoise.hvae_swap.v*.psnr", "denoise.unet.v*.psnr", "denoise.fbp.v*.psnr"),
    "generative": ("gen.ddpm.cond_acc", "gen.ddpm.fd_supervised_over_floor",
                   "gen.gan.cond_acc", "gen.gan.fd_supervised_over_floor",
                   "gen.synthetic.*.real*_acc_mean"),
}


def matching(names: Iterable[str], patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """The ``names`` matching ``patterns``, in pattern order (sorted within a pattern, each
    name once), and the patterns that matched none."""
    names = sorted(set(names))
    found: dict[str, None] = {}
    missing = []
    for pattern in patterns:
        hits = fnmatch.filter(names, pattern)
        if not hits:
            missing.append(pattern)
        found.update(dict.fromkeys(hits))
    return list(found), missing


def key_figure_names(names: Iterable[str]) -> list[str]:
    """The key figures of every pipeline among ``names`` (e.g. an MLflow store's metrics)."""
    patterns = dict.fromkeys(p for figures in KEY_FIGURES.values() for p in figures)
    return matching(names, patterns)[0]
