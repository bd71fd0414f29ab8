"""wav2vec pretrained on a project's training nights plus unlabelled nights of another project
(issue 17 item 5, docs/wav2vec.md "Four times the unlabelled nights").

Both projects are copies that ran `kedro run --pipeline=wav2vec --env=wav2vec_context` at least
to their subject split; ``OTHER`` generated more synthetic subjects
(``--params wav2vec.synthetic.n_subjects=70``). Nights depend only on (seed, subject), so
``OTHER``'s first subjects are ``PROJECT``'s. The script pretrains on ``PROJECT``'s training
nights plus ``--extra`` nights of ``OTHER``'s subjects numbered ``--first-extra`` and up (labels
unused), validates on ``PROJECT``'s validation nights, and saves the encoder as a new version of
``PROJECT``'s ``wav2vec.encoder``, which `benchmarks/wav2vec_fine_tuning.py PROJECT` then
fine-tunes on ``PROJECT``'s labelled nights as usual.

    PYTHONPATH=src python benchmarks/wav2vec_pretrain_more_nights.py PROJECT OTHER \\
        --extra 48 --epochs 40
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path
from typing import Any

import torch

from contrastive_signals.data.sleep_edf import parse_recording_name
from contrastive_signals.pipelines.wav2vec.nodes import pretrain_sleep_wav2vec

ENV = "wav2vec_context"


def subject_of(name: str) -> int:
    """The subject of a recording name ``SC4ssN``; ``ValueError`` naming a malformed one."""
    try:
        return parse_recording_name(name)[1]
    except ValueError as error:
        raise ValueError(f"recording '{name}': {error}") from None


def extra_nights(names: list[str], *, first_subject: int, count: int) -> list[str]:
    """The first ``count`` recordings (names ``SC4ssN``) of subjects >= ``first_subject``;
    raises ``ValueError`` when there are fewer."""
    chosen = [name for name in names if subject_of(name) >= first_subject][:count]
    if len(chosen) < count:
        raise ValueError(f"--extra {count}: only {len(chosen)} recordings of subjects >= "
                         f"{first_subject}; generate more subjects in the other project")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--extra", type=int, required=True)
    parser.add_argument("--first-extra", type=int, default=None,
                        help="first subject of the extra nights (default: the project's count)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="pretraining epochs (default: wav2vec.pretraining.fit.epochs)")
    args = parser.parse_args()
    from bench_common import project_context, sleep_epochs_of  # a sibling script module

    torch.set_num_threads(1)
    project, other = args.project.resolve(), args.other.resolve()
    context = project_context(project, ENV)
    params: dict[str, Any] = context.params["wav2vec"]
    split = context.catalog.load("wav2vec.split")
    first = args.first_extra if args.first_extra is not None else params["synthetic"]["n_subjects"]
    epochs = sleep_epochs_of(project_context(other, ENV))
    extra = extra_nights([r["name"] for r in epochs["recordings"]], first_subject=first,
                         count=args.extra)
    pretraining = copy.deepcopy(params["pretraining"])
    if args.epochs is not None:
        pretraining["fit"]["epochs"] = args.epochs
    nights = {"train": {"recordings": list(split["train"]["recordings"]) + extra},
              "val": {"recordings": list(split["val"]["recordings"])}}
    start = time.perf_counter()
    bundle, history, _ = pretrain_sleep_wav2vec(epochs, nights, pretraining,
                                                params["label_efficiency"])
    print(f"pretrained on {len(nights['train']['recordings'])} nights ({len(extra)} extra: "
          f"{extra[0]} .. {extra[-1]}) in {time.perf_counter() - start:.0f} s; last epoch: "
          f"val_accuracy {history['val_accuracy'][-1]:.3f}")
    os.chdir(project)  # the catalog's paths are relative to the project
    context.catalog.save("wav2vec.encoder", bundle)


if __name__ == "__main__":
    main()
