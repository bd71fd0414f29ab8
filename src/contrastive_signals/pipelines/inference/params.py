"""Typed ``inference.<task>`` parameter blocks (parameters_inference*.yml), checked before
the first node of an inference pipeline runs (``pipelines/parameter_checks.py``): a ``model``
that is not ``latest``, a version number or an MLflow model URI, and an ``input_folder``
that does not exist, fail naming the parameter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrastive_signals.config import from_params
from contrastive_signals.inference.bundles import model_choice


def check_model_and_folder(model: Any, input_folder: Any) -> None:
    """Raise ``ValueError`` naming ``model`` or ``input_folder`` when either is unusable
    (the folder is resolved from the working directory, the project's root in a Kedro run)."""
    model_choice(model, what="model")
    if not isinstance(input_folder, str) or not input_folder.strip():
        raise ValueError(f"input_folder must be a folder path, got {input_folder!r}")
    if not Path(input_folder).is_dir():
        raise ValueError(f"input_folder {input_folder!r} does not exist (from "
                         f"{Path.cwd()}): create it and put the files to predict in it "
                         "(docs/inference.md)")


@dataclass(frozen=True)
class InferenceParams:
    """``model``: latest | a registered version | an MLflow model URI; ``input_folder``: the
    folder of new files."""

    input_folder: str
    model: str | int = "latest"

    def __post_init__(self) -> None:
        check_model_and_folder(self.model, self.input_folder)


@dataclass(frozen=True)
class DigitsInferenceParams(InferenceParams):
    encoder: str = "triplet_pretrained"
    plot_items: int = 12

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.plot_items < 1:
            raise ValueError(f"plot_items must be >= 1, got {self.plot_items}")


@dataclass(frozen=True)
class SleepInferenceParams(InferenceParams):
    output_folder: str = "data/07_model_output/inference/sleep"


@dataclass(frozen=True)
class AfmInferenceParams(InferenceParams):
    variant: str = "deriv_pre_100pc"

    def __post_init__(self) -> None:
        super().__post_init__()
        from contrastive_signals.pipelines.afm.pipeline import VARIANTS

        known = (*VARIANTS, "supervised_cnn")
        if self.variant not in known:
            raise ValueError(f"variant must be one of {list(known)}, got {self.variant!r}")


def check_any_inference_block(values: Any, key: str) -> None:
    """The check of an ``inference.<task>`` block without its own class: ``model`` and
    ``input_folder`` when present (other keys are the task's own)."""
    values = values if isinstance(values, dict) else {}
    try:
        if "model" in values:
            model_choice(values["model"], what="model")
        if "input_folder" in values:
            check_model_and_folder(values.get("model", "latest"), values["input_folder"])
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None


TYPED = {"digits": DigitsInferenceParams, "sleep": SleepInferenceParams,
         "afm": AfmInferenceParams}


def typed_inference_params(values: Any, key: str) -> InferenceParams:
    """``inference.<task>`` as its class (``from_params``: unknown keys fail too)."""
    return from_params(TYPED[key.rsplit(".", 1)[1]], values, path=key)
