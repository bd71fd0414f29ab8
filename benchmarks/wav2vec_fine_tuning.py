"""Fine-tuning variants of the `wav2vec` pipeline's label-efficiency test, with diagnostics
(issue 17 item 5, docs/wav2vec.md).

Runs in a project copy after `kedro run --pipeline=wav2vec` (it reads that run's synthetic
nights, subject split and pretrained encoder through the catalog) and trains the stager per
(fraction, seed, init) with ``wav2vec.label_efficiency`` changed by ``--set key=value``
(YAML values, dotted keys). Per run it appends one JSON line to ``--out``: the test figures,
the same figures on the validation nights (what a variant may be chosen on), the epoch kept by
early stopping, per-epoch validation kappa and CTC CER, and what the CTC head decodes (the
test windows' hypotheses, the CER of the per-epoch head's collapsed predictions).

    PYTHONPATH=src python benchmarks/wav2vec_fine_tuning.py PROJECT --variant lr01 \\
        --set fine_tuning.lr_scale=0.1 --fractions 0.1 --seeds 0 1 2 3 4 --out runs.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import yaml
from sklearn.metrics import f1_score

from contrastive_signals.config import from_params
from contrastive_signals.data.sleep_epochs import recordings_of
from contrastive_signals.data.splits import label_subset
from contrastive_signals.methods import sleep_stager
from contrastive_signals.methods.label_efficiency import LabelEfficiencyParams
from contrastive_signals.metrics.cer import corpus_cer
from contrastive_signals.metrics.sleep import staged_recordings_metrics
from contrastive_signals.models.registry import from_bundle
from contrastive_signals.models.sleep import BLANK, collapse_repeats, predict_recording


def load_run(project: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict]:
    """The epochs dataset, split, encoder bundle and ``wav2vec`` parameters of the project."""
    from bench_common import project_context, sleep_epochs_of  # a sibling script module

    context = project_context(project)
    split, bundle = context.catalog.load("wav2vec.split"), context.catalog.load("wav2vec.encoder")
    return sleep_epochs_of(context), split, bundle, context.params["wav2vec"]


def set_dotted(values: dict[str, Any], assignment: str) -> None:
    key, raw = assignment.split("=", 1)
    *parents, leaf = key.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[leaf] = yaml.safe_load(raw)


def validation_with_cer(recordings, *, window: int, stride: int):
    """The stager's validation plus ``val_cer`` (greedy CTC decoding of the validation nights'
    non-overlapping windows), to follow the CTC head epoch by epoch."""
    plain = PLAIN_VALIDATION(recordings, window=window, stride=stride)

    def validate(model):
        references, hypotheses = [], []
        for r in recordings:
            _, ctc = predict_recording(model, r["epochs"], window=window, stride=window,
                                       device=next(model.parameters()).device)
            references += [collapse_repeats(r["labels"][s:s + window])
                           for s in range(0, len(r["labels"]), window)]
            hypotheses += [[s - 1 for s in collapse_repeats(lp.argmax(-1)) if s != BLANK]
                           for lp in ctc]
        return {**plain(model), "val_cer": corpus_cer(references, hypotheses)}

    return validate


PLAIN_VALIDATION = sleep_stager.stager_validation


def diagnostics(staged: list[dict[str, Any]], *, window: int) -> dict[str, Any]:
    """What the CTC head decodes on the test windows, beside the per-epoch head's collapsed
    predictions per window (``head_cer``)."""
    references = [w for r in staged for w in r["window_references"]]
    hypotheses = [w for r in staged for w in r["window_hypotheses"]]
    head = [collapse_repeats(r["predicted"][s:s + window])
            for r in staged for s in range(0, len(r["true"]), window)]
    true = torch.cat([r["true"] for r in staged]).numpy()
    predicted = torch.cat([r["predicted"] for r in staged]).numpy()
    return {"class_f1": f1_score(true, predicted, average=None, labels=range(5),
                                 zero_division=0).tolist(),
            "head_cer": corpus_cer(references, head),
            "hyp_mean_len": sum(map(len, hypotheses)) / len(hypotheses),
            "ref_mean_len": sum(map(len, references)) / len(references),
            "head_mean_len": sum(map(len, head)) / len(head),
            "single_symbol_share": sum(len(h) == 1 for h in hypotheses) / len(hypotheses),
            "hypotheses": hypotheses}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--inits", nargs="+", default=["w2v", "scratch"])
    parser.add_argument("--per-epoch-cer", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.out.resolve()  # before load_run moves into the project
    epochs, split, bundle, params = load_run(args.project.resolve())
    values = copy.deepcopy(params["label_efficiency"])
    for assignment in args.set:
        set_dotted(values, assignment)
    config = from_params(LabelEfficiencyParams, values, path="wav2vec.label_efficiency")
    if args.per_epoch_cer:
        sleep_stager.stager_validation = validation_with_cer
    pretrained = from_bundle(bundle, modality="signal", outputs=("frames",))
    train, val, test = (recordings_of(epochs, split, p) for p in ("train", "val", "test"))
    by_fraction = dict(zip(config.fractions, config.epochs, strict=True))
    for fraction in args.fractions:
        for seed in args.seeds:
            drawn = seed if config.subset == "per_seed" else config.seeds[0]
            subset = [train[i] for i in label_subset(len(train), fraction=fraction, seed=drawn,
                                                     subset_seed=config.subset_seed)]
            fit = replace(config.training.fit, seed=seed, epochs=by_fraction[fraction])
            training = replace(config.training, fit=fit)
            for init in args.inits:
                start = time.perf_counter()
                bundle_out, history = sleep_stager.train_sleep_stager(
                    subset, val, stages=epochs["stages"], params=training,
                    name=f"{args.variant}_{init}_{fraction}_{seed}",
                    encoder=pretrained if init == "w2v" else None,
                    fine_tuning=config.fine_tuning)
                model = from_bundle(bundle_out)
                staged = sleep_stager.stage_recordings(model, test, window=training.window,
                                                       params=config.evaluation)
                staged_val = sleep_stager.stage_recordings(model, val, window=training.window,
                                                           params=config.evaluation)
                kappas = history.get("val_kappa", [])
                row = {"variant": args.variant, "set": args.set, "fraction": fraction,
                       "seed": seed, "init": init, "recordings": [r["name"] for r in subset],
                       "test": staged_recordings_metrics(staged),
                       "val": staged_recordings_metrics(staged_val),
                       "epochs_trained": len(history["train_loss"]),
                       "best_epoch": int(torch.tensor(kappas).argmax()) if kappas else None,
                       "history": {k: v for k, v in history.items()
                                   if k in ("val_kappa", "val_cer", "train_loss")},
                       **diagnostics(staged, window=training.window), "seconds": time.perf_counter() - start}
                print(json.dumps({k: v for k, v in row.items()
                                  if k not in ("hypotheses", "history")}), flush=True)
                with out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
