"""Classifier-free guidance of stored DDPMs, judged against the TRAINING digits, so that the
guidance weight can be chosen without looking at the test split.

For each DDPM bundle (``data/06_models/generative_ddpm.pt`` of a project copy) and each
guidance weight, 25 class-conditional samples per class are drawn with the pipeline's sampler
and scored in the supervised CNN's space against half of the training images (class-balanced;
the other half gives the floor): class accuracy, Fréchet distance over the floor, improved
precision and recall. The rule the default follows: the lowest FD among the weights whose
class accuracy is >= ``--min-accuracy``.

    python benchmarks/ddpm_guidance.py --project /tmp/copy_seed0 --bundle \\
        /tmp/copy_seed0/data/06_models/generative_ddpm.pt /tmp/copy_seed1/... \\
        --out benchmarks/results/ddpm_guidance_train_reference.json
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from bench_common import ROOT, machine_info, write_figures

from contrastive_signals.metrics.generative import frechet_distance, precision_recall
from contrastive_signals.models.registry import embed, from_bundle
from contrastive_signals.pipelines.generative.nodes import (
    NUM_CLASSES,
    SamplingParams,
    class_balanced_halves,
    draw,
)


def pipeline_sampling() -> SamplingParams:
    """The DDPM sampler of ``conf/base`` (its guidance is replaced per weight)."""
    params = yaml.safe_load((ROOT / "conf/base/parameters_generative.yml").read_text())
    return SamplingParams(**params["generative"]["ddpm"]["sampling"])


def _latest(path: Path) -> Path:
    """A versioned dataset's newest file (``path/<version>/<name>``), or ``path`` itself."""
    if path.is_file():
        return path
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    if not versions:
        raise FileNotFoundError(f"{path}: expected a file or versioned folders of one")
    return versions[-1] / path.name


def training_reference(project: Path) -> tuple[torch.nn.Module, torch.Tensor, float]:
    """The supervised CNN of ``project``, its features of half the training digits
    ``[M, D]`` and the FD of the other half against them (the floor)."""
    features = torch.load(project / "data/04_feature/digit_features.pt", weights_only=False)
    classifier = from_bundle(torch.load(_latest(project / "data/06_models/supervised_encoder.pt"),
                                        weights_only=False))
    train = features["train"]
    half_a, half_b = class_balanced_halves(train)
    reference = embed(classifier, train["images"][half_a])
    floor = frechet_distance(reference, embed(classifier, train["images"][half_b]))
    return classifier, reference, floor


def guidance_scores(bundle: dict, classifier: torch.nn.Module, reference: torch.Tensor,
                    floor: float, weights: list[float], *, per_class: int, seed: int,
                    k: int = 3) -> dict[str, dict[str, float]]:
    """``{str(w): {cond_acc, fd_over_floor, precision, recall}}`` for each guidance ``w``."""
    labels = torch.arange(NUM_CLASSES).repeat_interleave(per_class)
    sampling = pipeline_sampling()
    out = {}
    for w in weights:
        images, _ = draw(bundle, replace(sampling, guidance=w), labels, seed)
        with torch.no_grad():
            accuracy = float((classifier(images).argmax(1) == labels).float().mean())
        fake = embed(classifier, images)
        precision, recall = precision_recall(reference, fake, k)
        out[str(w)] = {"cond_acc": accuracy,
                       "fd_over_floor": frechet_distance(reference, fake) / floor,
                       "precision": precision, "recall": recall}
    return out


def chosen_weight(scores: dict[str, dict[str, float]], min_accuracy: float) -> float | None:
    """The weight of lowest FD among those with ``cond_acc >= min_accuracy`` (None if none)."""
    eligible = [w for w, s in scores.items() if s["cond_acc"] >= min_accuracy]
    return float(min(eligible, key=lambda w: scores[w]["fd_over_floor"])) if eligible else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True,
                        help="a project copy with digit_features and supervised.encoder")
    parser.add_argument("--bundle", type=Path, nargs="+", required=True)
    parser.add_argument("--weights", type=float, nargs="+",
                        default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.25])
    parser.add_argument("--per-class", type=int, default=25)
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--min-accuracy", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/ddpm_guidance_train_reference.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifier, reference, floor = training_reference(args.project)
    figures: dict[str, object] = {"config.weights": args.weights, "config.seed": args.seed,
                                  "config.per_class": args.per_class,
                                  "config.min_accuracy": args.min_accuracy,
                                  "train_floor_fd": floor}
    for path in args.bundle:
        scores = guidance_scores(torch.load(path, weights_only=False), classifier, reference,
                                 floor, args.weights, per_class=args.per_class, seed=args.seed)
        figures[f"{path}.scores"] = scores
        figures[f"{path}.chosen_weight"] = chosen_weight(scores, args.min_accuracy)
        print(path, figures[f"{path}.chosen_weight"],
              {w: {k: round(v, 3) for k, v in s.items()} for w, s in scores.items()}, flush=True)
    write_figures({**figures, **machine_info()}, args.out)


if __name__ == "__main__":
    main()
