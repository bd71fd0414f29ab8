"""Time to ingest one full-length (8 h) recording-night of EDF+.

A synthetic night (30 min wake, 7 h of sleep cycles, 30 min wake; EEG Fpz-Cz, EEG Pz-Oz,
EOG horizontal, EMG submental) is written as Sleep-EDF EDF+ files to a temporary folder,
then ingested as the `sleep` pipeline does: read with MNE and validated
(:class:`SleepEdfDataset`, three channels, 30 min of wake kept around the sleep period),
band-passed 0.3-35 Hz, resampled to 100 Hz, normalised and cut into 30-s epochs
(:func:`recording_epochs`). It runs twice: written at 100 Hz (Sleep-EDF's rate; the
resampling step is then skipped) and at 200 Hz (resampled to 100 Hz). Writes a flat JSON
object::

    <rate>hz.write_s, <rate>hz.read_s, <rate>hz.preprocess_s, <rate>hz.ingest_s,
    <rate>hz.epochs, <rate>hz.recording_hours, <rate>hz.night_hours_per_s

(``ingest_s`` = read + preprocess, the median over ``--repeats`` runs) plus ``machine.*``
and ``config.*`` entries.

    python benchmarks/sleep_ingestion.py --out benchmarks/results/sleep_ingestion.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import mne
from bench_common import machine_info

from contrastive_signals.data.sleep_edf import recording_epochs
from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig, synthetic_sleep_edf
from contrastive_signals.io.sleep_edf_dataset import SleepEdfDataset, SyntheticSleepEdfDataset

PREPROCESSING = {"low_hz": 0.3, "high_hz": 35.0, "target_hz": 100.0, "filter_order": 4,
                 "normalize": "robust", "clip": 20.0}


def run(sampling_rate: float, repeats: int, seed: int) -> dict[str, float]:
    config = SyntheticSleepConfig(n_subjects=1, sleep_hours=7.0, wake_before_minutes=30.0,
                                  wake_after_minutes=30.0, sampling_rate=sampling_rate, seed=seed)
    files = synthetic_sleep_edf(config)
    prefix = f"{int(sampling_rate)}hz"
    reads, preprocesses, writes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            folder = Path(tmp) / f"run{len(writes)}"
            start = time.perf_counter()
            SyntheticSleepEdfDataset(folder=str(folder)).save(files)
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            recording = SleepEdfDataset(folder=str(folder)).load()[0]
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            epochs = recording_epochs(recording, **PREPROCESSING)
            preprocesses.append(time.perf_counter() - start)
        psg = next(folder.glob("*-PSG.edf"))
        size_mb = psg.stat().st_size / 1e6
        raw = mne.io.read_raw_edf(psg, preload=False, verbose="error")
        hours = raw.n_times / raw.info["sfreq"] / 3600
    ingest = [r + p for r, p in zip(reads, preprocesses, strict=True)]
    return {
        f"{prefix}.write_s": round(statistics.median(writes), 3),
        f"{prefix}.read_s": round(statistics.median(reads), 3),
        f"{prefix}.preprocess_s": round(statistics.median(preprocesses), 3),
        f"{prefix}.ingest_s": round(statistics.median(ingest), 3),
        f"{prefix}.epochs": int(epochs["labels"].shape[0]),
        f"{prefix}.epoch_shape": list(epochs["epochs"].shape[1:]),
        f"{prefix}.recording_hours": round(hours, 2),
        f"{prefix}.psg_file_mb": round(size_mb, 1),
        f"{prefix}.night_hours_per_s": round(hours / statistics.median(ingest), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sleep_ingestion.json"))
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results = {}
    for rate in (100.0, 200.0):
        results.update(run(rate, args.repeats, args.seed))
    figures = {
        "config.night": "30 min wake + 7 h sleep cycles + 30 min wake (wake lengths +-20 %)",
        "config.channels_written": 4,
        "config.channels_read": 3,
        "config.keep_wake_minutes": 30.0,
        **{f"config.{key}": value for key, value in PREPROCESSING.items()},
        "config.repeats": args.repeats,
        "config.statistic": "median",
        **results,
        **machine_info("numpy", "scipy", "mne"),
        "machine.peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine.loadavg_1min_before": round(load_before, 2),
        "machine.loadavg_1min_after": round(os.getloadavg()[0], 2),
        "total_runtime_s": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
