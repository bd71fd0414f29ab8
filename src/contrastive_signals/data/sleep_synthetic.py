"""Synthetic sleep recordings in PhysioNet Sleep-EDF's sleep-cassette layout.

Each subject-night is a hypnogram that follows sleep cycles (long wake, then roughly
90-minute cycles of N1 -> N2 -> N3 -> N2 -> REM with N3 shrinking and REM growing across
the night, brief awakenings, then wake until the end) and four signals with stage-typical
content over 1/f background noise:

- wake: alpha (8-12 Hz, strongest on Pz-Oz), beta, blinks and eye movements, high EMG;
- N1: theta (4-7 Hz), slow rolling eye movements, lower EMG;
- N2: sleep spindles (12-14 Hz bursts of 0.5-1.5 s) and K-complexes;
- N3: high-amplitude delta (0.5-2 Hz; larger for R&K stage 4);
- REM: low-amplitude theta, rapid eye movements on the EOG, the lowest EMG.

Stage features change smoothly across epoch boundaries, and ``difficulty`` (0..1) raises
the background noise, mixes each epoch's features with a neighbouring stage's and jitters
them, so stages overlap as in real scoring. Nothing here writes files: the generator returns
MNE objects (``RawArray`` for a PSG, ``Annotations`` for a hypnogram) keyed by their Sleep-EDF
file names, and a Kedro dataset writes them as EDF+.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from contrastive_signals.config import require_at_least
from contrastive_signals.data.sleep_edf import EPOCH_SECONDS, hypnogram_file_name, psg_file_name

CHANNELS: tuple[str, ...] = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental")
CHANNEL_TYPES: tuple[str, ...] = ("eeg", "eeg", "eog", "emg")
TECHNICIANS = "CHJMPUVW"  # letters of Sleep-EDF's hypnogram file names
FIRST_NIGHT = datetime.datetime(1989, 4, 24, 22, 0, tzinfo=datetime.UTC)

# Hypnogram texts used while generating (written to the file as they are).
W, S1, S2, S3, S4, R = ("Sleep stage W", "Sleep stage 1", "Sleep stage 2", "Sleep stage 3",
                        "Sleep stage 4", "Sleep stage R")
UNKNOWN, MOVEMENT = "Sleep stage ?", "Movement time"

# Per-stage feature profile. Amplitudes in microvolts (RMS of the band), event rates per
# 30-s epoch, EMG as a relative level.
FEATURES = ("alpha", "theta", "delta", "beta", "spindles", "k_complexes", "rapid_eye",
            "slow_eye", "blinks", "emg")
_PROFILE = {
    W:  (16.0, 4.0, 5.0, 5.0, 0.0, 0.0, 1.5, 2.0, 2.5, 1.00),
    S1: (5.0, 11.0, 8.0, 2.5, 0.2, 0.1, 0.0, 35.0, 0.3, 0.55),
    S2: (2.5, 8.0, 16.0, 1.5, 3.0, 1.2, 0.0, 4.0, 0.0, 0.35),
    S3: (1.5, 7.0, 45.0, 1.0, 1.0, 0.4, 0.0, 2.0, 0.0, 0.30),
    S4: (1.0, 6.0, 65.0, 1.0, 0.5, 0.2, 0.0, 2.0, 0.0, 0.30),
    R:  (4.0, 10.0, 7.0, 2.5, 0.0, 0.0, 5.0, 6.0, 0.0, 0.10),
}
_PROFILE[UNKNOWN] = _PROFILE[W]
_PROFILE[MOVEMENT] = _PROFILE[W]
# Stages a stage's features get mixed with (its neighbours in scoring disagreements).
_NEIGHBOURS = {W: (S1, R), S1: (W, S2, R), S2: (S1, S3), S3: (S2, S4), S4: (S3,), R: (S1, W),
               UNKNOWN: (S1,), MOVEMENT: (S1,)}


@dataclass(frozen=True)
class SyntheticSleepConfig:
    """Size and difficulty of the synthetic Sleep-EDF set (``sleep.synthetic`` parameters)."""

    n_subjects: int = 6
    nights_per_subject: int = 1
    sleep_hours: float = 3.5            # sleep period: onset to final awakening
    wake_before_minutes: float = 60.0   # recorded wake before sleep onset (mean)
    wake_after_minutes: float = 45.0    # recorded wake after the final awakening (mean)
    cycle_minutes: float = 90.0
    sampling_rate: float = 100.0
    difficulty: float = 0.75            # 0: clean, separable stages; 1: noisy, overlapping
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.n_subjects <= 100:
            raise ValueError(f"n_subjects must lie in [1, 100], got {self.n_subjects}")
        if self.nights_per_subject not in (1, 2):
            raise ValueError(f"nights_per_subject must be 1 or 2 (Sleep-EDF), got {self.nights_per_subject}")
        if not self.sleep_hours > 0:
            raise ValueError(f"sleep_hours must be > 0, got {self.sleep_hours}")
        require_at_least(self, ("wake_before_minutes", "wake_after_minutes"), 0)
        if not self.cycle_minutes >= 30:
            raise ValueError(f"cycle_minutes must be >= 30, got {self.cycle_minutes}")
        if not self.sampling_rate >= 90:
            raise ValueError(f"sampling_rate must be >= 90 Hz (EMG content up to 45 Hz), got "
                             f"{self.sampling_rate}")
        if not 0 <= self.difficulty <= 1:
            raise ValueError(f"difficulty must lie in [0, 1], got {self.difficulty}")


# ------------------------------------------------------------------------ hypnogram


def _minutes(rng: np.random.Generator, low: float, high: float) -> int:
    """A duration drawn uniformly in ``[low, high]`` minutes, in 30-s epochs (at least 1)."""
    return max(1, round(rng.uniform(low, high) * 60 / EPOCH_SECONDS))


def synthetic_hypnogram(*, sleep_epochs: int, wake_before_epochs: int, wake_after_epochs: int,
                        cycle_epochs: int, rng: np.random.Generator) -> list[str]:
    """One hypnogram text per 30-s epoch: wake, ``sleep_epochs`` of cycling sleep, wake.

    Cycles vary in length (+-15 %); early cycles hold most N3 (with R&K stage 4 in the middle
    of long N3 runs), later ones more REM. Brief awakenings, N1 intrusions in N2,
    ``Movement time`` epochs and a final ``Sleep stage ?`` epoch occur as in real files.

    Returns:
        ``wake_before_epochs + sleep_epochs + wake_after_epochs + 1`` texts.
    """
    sleep: list[str] = []
    cycle = 0
    while len(sleep) < sleep_epochs:
        length = max(20, round(cycle_epochs * rng.uniform(0.85, 1.15)))
        n1 = _minutes(rng, 3, 8) if cycle == 0 else _minutes(rng, 1, 4)
        n3 = round(length * max(0.0, 0.38 - 0.13 * cycle) * rng.uniform(0.8, 1.2))
        rem = round(length * min(0.12 + 0.08 * cycle, 0.4) * rng.uniform(0.8, 1.2))
        n2 = max(4, length - n1 - n3 - rem)
        n2_before = round(n2 * rng.uniform(0.55, 0.75))
        deep = n3 // 2 if n3 >= 10 else 0  # stage 4 in the middle of a long N3 run
        n3_runs = [S3] * ((n3 - deep) // 2) + [S4] * deep + [S3] * (n3 - deep - (n3 - deep) // 2)
        part = [S1] * n1 + [S2] * n2_before + n3_runs + [S2] * (n2 - n2_before) + [R] * rem
        # N1 intrusions in N2 and a brief awakening after REM, as in real nights.
        part = [S1 if s == S2 and rng.random() < 0.04 else s for s in part]
        if rng.random() < 0.6:
            part += [W] * int(rng.integers(1, 4))
        sleep += part
        cycle += 1
    sleep = sleep[:sleep_epochs]
    sleep = [MOVEMENT if s != W and rng.random() < 0.006 else s for s in sleep]
    sleep[-1] = S1 if sleep[-1] == W else sleep[-1]  # the sleep period ends asleep
    return [W] * wake_before_epochs + sleep + [W] * wake_after_epochs + [UNKNOWN]


def hypnogram_runs(stages: list[str], *, epoch_seconds: float = EPOCH_SECONDS
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Merge runs of equal texts into annotations (onset, duration in seconds, text), as in
    Sleep-EDF's hypnogram files."""
    starts = [0] + [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
    ends = starts[1:] + [len(stages)]
    onset = np.asarray(starts, float) * epoch_seconds
    duration = (np.asarray(ends) - np.asarray(starts)) * epoch_seconds
    return onset, duration.astype(float), [stages[s] for s in starts]


# -------------------------------------------------------------------------- signals


def noise_rows(n: int, *, sampling_rate: float, bands: Sequence[tuple[float, float] | None],
               rng: np.random.Generator) -> np.ndarray:
    """Stationary Gaussian noise rows, each unit RMS, synthesised in the frequency domain.

    Args:
        n: samples per row.
        bands: one entry per row: ``(low_hz, high_hz)`` gives band-limited noise (an ideal
            band-pass: rhythms that wax and wane naturally); ``None`` gives 1/f ("pink")
            noise above 0.3 Hz, flat below.

    Returns:
        ``[len(bands), n]`` float32.
    """
    size = scipy.fft.next_fast_len(n, real=True)
    freqs = np.fft.rfftfreq(size, d=1.0 / sampling_rate).astype(np.float32)
    spectrum = np.zeros((len(bands), len(freqs)), dtype=np.complex64)
    pink = (1.0 / np.sqrt(np.maximum(freqs, 0.3))).astype(np.float32)
    for row, band in enumerate(bands):
        # White noise has i.i.d. complex Gaussian Fourier coefficients: draw only the bins kept.
        first, stop = (1, len(freqs)) if band is None else np.searchsorted(freqs, band)
        draws = rng.standard_normal((stop - first, 2), dtype=np.float32).view(np.complex64)[:, 0]
        spectrum[row, first:stop] = draws * pink[first:stop] if band is None else draws
    rows = scipy.fft.irfft(spectrum, size, axis=1, workers=-1)[:, :n]
    return rows / np.sqrt(np.mean(rows ** 2, axis=1, keepdims=True))


def _envelope(per_epoch: np.ndarray, n: int, samples_per_epoch: int, *, step: int = 10
              ) -> np.ndarray:
    """Per-sample values interpolated between epoch centres (smooth stage transitions), held
    constant over ``step`` samples to save time."""
    centres = (np.arange(len(per_epoch)) + 0.5) * samples_per_epoch
    coarse = np.interp(np.arange(0, n, step), centres, per_epoch).astype(np.float32)
    return np.repeat(coarse, step)[:n]


def _add_event(signal: np.ndarray, start: int, waveform: np.ndarray) -> None:
    stop = min(len(signal), start + len(waveform))
    if start < stop:
        signal[start:stop] += waveform[:stop - start]


def _event_starts(rates: np.ndarray, samples_per_epoch: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson event onsets (sample indices) with ``rates[e]`` events expected in epoch ``e``."""
    counts = rng.poisson(np.maximum(rates, 0.0))
    epochs = np.repeat(np.arange(len(rates)), counts)
    return epochs * samples_per_epoch + rng.integers(0, samples_per_epoch, size=len(epochs))


def _persistent_flags(n: int, probability: float, rng: np.random.Generator, *, span: int = 6
                      ) -> np.ndarray:
    """``[n]`` booleans that hold for blocks of ``span`` epochs (states that last minutes)."""
    blocks = rng.random(n // span + 1) < probability
    return np.repeat(blocks, span)[:n]


def epoch_features(stages: list[str], *, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    """``[E, F]`` feature levels per epoch (order :data:`FEATURES`).

    Each epoch's stage profile is mixed with a neighbouring stage's (weight up to
    ``0.9 * difficulty``) and jittered (log-normal, sigma ``0.2 + 0.5 * difficulty``). With
    probability ``0.6 * difficulty``, for stretches of 3 minutes, wake is eyes-open (little
    alpha, more beta) and REM is tonic (few rapid eye movements), the cases human scorers
    confuse with N1.
    """
    n = len(stages)
    own = np.array([_PROFILE[s] for s in stages])
    partner = np.array([_PROFILE[_NEIGHBOURS[s][rng.integers(len(_NEIGHBOURS[s]))]] for s in stages])
    mix = rng.uniform(0.0, 0.9 * difficulty, size=(n, 1))
    feats = ((1 - mix) * own + mix * partner) * np.exp(rng.normal(0.0, 0.2 + 0.5 * difficulty,
                                                                    size=own.shape))
    eyes_open = _persistent_flags(n, 0.6 * difficulty, rng) & np.array([s == W for s in stages])
    feats[eyes_open, FEATURES.index("alpha")] *= 0.25
    feats[eyes_open, FEATURES.index("beta")] *= 1.5
    tonic = _persistent_flags(n, 0.6 * difficulty, rng) & np.array([s == R for s in stages])
    feats[tonic, FEATURES.index("rapid_eye")] *= 0.1
    return feats


def synthetic_psg(stages: list[str], *, sampling_rate: float, difficulty: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Signals of one night following ``stages`` (one hypnogram text per 30-s epoch).

    Returns:
        ``[4, E * 30 * sampling_rate]`` float64 volts, channels :data:`CHANNELS` (computed
        in float32: plenty for EDF's 16-bit samples).
    """
    fs = sampling_rate
    spe = round(EPOCH_SECONDS * fs)
    n = len(stages) * spe
    feats = epoch_features(stages, difficulty=difficulty, rng=rng)
    level = {name: _envelope(feats[:, i], n, spe) for i, name in enumerate(FEATURES)}

    # Subject traits: alpha frequency, overall amplitude.
    alpha_hz = rng.uniform(9.0, 11.0)
    gain = np.exp(rng.normal(0.0, 0.2))
    rows = noise_rows(n, sampling_rate=fs, rng=rng, bands=[
        (alpha_hz - 1.0, alpha_hz + 1.0), (alpha_hz - 1.0, alpha_hz + 1.0),  # one per EEG lead
        (4.0, 7.0), (4.0, 7.0), (0.5, 2.0), (0.5, 2.0), (15.0, 30.0), (15.0, 30.0),
        (0.15, 0.6), (20.0, min(45.0, 0.45 * fs)), None, None, None])
    alpha, theta, delta, beta = rows[0:2], rows[2:4], rows[4:6], rows[6:8]
    slow_eye, emg, background = rows[8], rows[9], rows[10:13]

    # Transient events, placed per epoch at Poisson rates.
    spindles, k_complexes, eyes = (np.zeros(n, np.float32) for _ in range(3))
    for start in _event_starts(feats[:, FEATURES.index("spindles")], spe, rng):
        tt = np.arange(round(rng.uniform(0.5, 1.5) * fs)) / fs
        wave = np.sin(2 * np.pi * rng.uniform(12.0, 14.0) * tt) * np.hanning(len(tt))
        _add_event(spindles, start, rng.uniform(20.0, 40.0) * wave)
    kc_t = np.arange(round(1.0 * fs)) / fs
    k_wave = -np.exp(-((kc_t - 0.25) / 0.08) ** 2) + 0.5 * np.exp(-((kc_t - 0.55) / 0.15) ** 2)
    for start in _event_starts(feats[:, FEATURES.index("k_complexes")], spe, rng):
        _add_event(k_complexes, start, rng.uniform(70.0, 140.0) * k_wave)
    rem_t = np.arange(round(1.5 * fs)) / fs
    saccade = (1 - np.exp(-rem_t / 0.04)) * np.exp(-rem_t / 0.6)  # fast jump, slow return
    for start in _event_starts(feats[:, FEATURES.index("rapid_eye")], spe, rng):
        _add_event(eyes, start, rng.choice([-1.0, 1.0]) * rng.uniform(60.0, 160.0) * saccade)
    blink_t = np.arange(round(0.6 * fs)) / fs
    blink = np.exp(-((blink_t - 0.3) / 0.08) ** 2)
    for start in _event_starts(feats[:, FEATURES.index("blinks")], spe, rng):
        _add_event(eyes, start, rng.uniform(80.0, 150.0) * blink)
    eyes += level["slow_eye"] * slow_eye

    def leads(a: float, b: float) -> np.ndarray:  # weights on (Fpz-Cz, Pz-Oz)
        return np.array([[a], [b]], dtype=np.float32)

    noise_uv = np.float32(6.0 + 24.0 * difficulty)
    eeg = (level["alpha"] * alpha * leads(0.45, 1.0) + level["theta"] * theta
           + level["delta"] * delta * leads(1.0, 0.7) + level["beta"] * beta
           + leads(1.0, 0.6) * spindles + leads(1.0, 0.45) * k_complexes
           + leads(0.25, 0.05) * eyes             # frontal leads pick up eye movements
           + noise_uv * background[:2])
    eog = eyes + np.float32(0.35) * level["delta"] * delta[0] + np.float32(0.6) * noise_uv * background[2]
    t = np.arange(n, dtype=np.float32) / np.float32(fs)
    muscle = np.float32(25.0) * level["emg"] * emg * (1 + np.float32(0.3) * np.sin(np.float32(2 * np.pi / 7.0) * t))
    muscle += rng.standard_normal(n, dtype=np.float32) * np.float32(1.5)

    signals = np.vstack([eeg, eog[None], muscle[None]])
    movement = np.repeat(np.array([s == MOVEMENT for s in stages]), spe)
    if movement.any():  # movement artefacts: large broadband bursts on every channel
        signals[:, movement] += 150.0 * rng.standard_normal((4, int(movement.sum())), dtype=np.float32)
    return signals.astype(np.float64) * (gain * 1e-6)


# ------------------------------------------------------------------------- the set


def synthetic_night(subject: int, night: int, config: SyntheticSleepConfig) -> dict[str, Any]:
    """Hypnogram and signals of one subject-night, drawn from its own generator
    ``default_rng([seed, subject, night])``: a night does not change with ``n_subjects``.

    Returns:
        ``{"stages": [E] texts, "signals": [4, E * 30 * fs] volts, "technician": letter,
        "start": datetime}``.
    """
    rng = np.random.default_rng([config.seed, subject, night])
    epochs_per_minute = 60 / EPOCH_SECONDS
    stages = synthetic_hypnogram(
        sleep_epochs=round(config.sleep_hours * 60 * epochs_per_minute),
        wake_before_epochs=round(config.wake_before_minutes * rng.uniform(0.8, 1.2) * epochs_per_minute),
        wake_after_epochs=round(config.wake_after_minutes * rng.uniform(0.8, 1.2) * epochs_per_minute),
        cycle_epochs=round(config.cycle_minutes * epochs_per_minute),
        rng=rng,
    )
    signals = synthetic_psg(stages, sampling_rate=config.sampling_rate,
                            difficulty=config.difficulty, rng=rng)
    start = FIRST_NIGHT + datetime.timedelta(days=2 * subject + night - 1,
                                             minutes=int(rng.integers(-60, 60)))
    return {"stages": stages, "signals": signals,
            "technician": TECHNICIANS[int(rng.integers(len(TECHNICIANS)))], "start": start}


def synthetic_sleep_edf(config: SyntheticSleepConfig) -> dict[str, Any]:
    """Every subject-night as MNE objects keyed by Sleep-EDF file name.

    Returns:
        ``{"SC4ssNE0-PSG.edf": mne.io.RawArray, "SC4ssNE<x>-Hypnogram.edf": mne.Annotations}``
        for subjects ``0 .. n_subjects - 1`` and nights ``1 .. nights_per_subject``; signals
        in volts with channel names :data:`CHANNELS`.
    """
    import mne

    files: dict[str, Any] = {}
    info = mne.create_info(list(CHANNELS), config.sampling_rate, list(CHANNEL_TYPES), verbose="error")
    for subject in range(config.n_subjects):
        for night in range(1, config.nights_per_subject + 1):
            generated = synthetic_night(subject, night, config)
            raw = mne.io.RawArray(generated["signals"], info.copy(), verbose="error")
            raw.set_meas_date(generated["start"])
            onset, duration, description = hypnogram_runs(generated["stages"])
            files[psg_file_name(subject, night)] = raw
            files[hypnogram_file_name(subject, night, generated["technician"])] = mne.Annotations(
                onset, duration, description, orig_time=generated["start"])
    return files
