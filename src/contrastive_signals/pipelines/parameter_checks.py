"""Every parameter block a node reads, checked before the first node runs.

Nodes parse their ``params:<key>`` inputs into typed dataclasses, which fail with the full
parameter path, but only when the node runs, after earlier nodes have trained for minutes.
:data:`CHECKS` maps each key (``fnmatch`` patterns for namespaced blocks) to the very class a
node builds from it, so the hook ``hooks/parameters.py`` can build all of them up front. A
test asserts that every ``params:`` input of every registered pipeline has a check here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.data import afm_curves, sleep_epochs
from contrastive_signals.data.afm_simulator import AfmSimulationConfig
from contrastive_signals.data.segment_sequences import SegmentDataParams
from contrastive_signals.data.sleep_synthetic import SyntheticSleepConfig
from contrastive_signals.methods.ctc import CTCTrainParams, DecodingParams
from contrastive_signals.methods.label_efficiency import LabelEfficiencyParams
from contrastive_signals.methods.sleep_stager import SleepEvaluationParams, SleepStagerParams
from contrastive_signals.methods.wav2vec import Wav2VecPretraining
from contrastive_signals.models.curves import CurveCNNParams
from contrastive_signals.pipelines.afm import params as afm
from contrastive_signals.pipelines.ctc import nodes as ctc
from contrastive_signals.pipelines.denoising.params import check_params as denoising_params
from contrastive_signals.pipelines.evaluation.nodes import EvaluationParams
from contrastive_signals.pipelines.features.nodes import ImageFeatureParams, SignalFeatureParams
from contrastive_signals.pipelines.generative import nodes as generative
from contrastive_signals.pipelines.inference import params as inference
from contrastive_signals.pipelines.inference.denoising import DenoisingInferenceParams
from contrastive_signals.pipelines.inference.timeseries import TimeseriesInferenceParams
from contrastive_signals.pipelines.ingestion.nodes import SplitParams as DigitSplitParams
from contrastive_signals.pipelines.pretraining.nodes import PretrainParams
from contrastive_signals.pipelines.supervised.nodes import SupervisedParams
from contrastive_signals.pipelines.timeseries.nodes import ucr_params
from contrastive_signals.pipelines.timeseries.params import Mnist1dParams
from contrastive_signals.pipelines.triplet.nodes import TripletRunParams
from contrastive_signals.signal.force_curves import PeakDetectorGrid
from contrastive_signals.sweep.spec import check_sweeps

Check = Callable[[Any, str], object]


def typed(cls: type) -> Check:
    """The check that builds dataclass ``cls`` from a block, as the node does."""
    return lambda values, key: from_params(cls, values, path=key)


def _digit_split(values: Any, key: str) -> object:
    return from_params(DigitSplitParams, (values or {}).get("split"), path=f"{key}.split")


CHECKS: dict[str, Check] = {
    "inference.timeseries": typed(TimeseriesInferenceParams),
    "inference.denoising": typed(DenoisingInferenceParams),
    "ingestion": _digit_split,
    "features": typed(ImageFeatureParams),
    "signal_features.*": typed(SignalFeatureParams),
    "pretraining.*": typed(PretrainParams),
    "triplet": typed(TripletRunParams),
    "triplet_*": typed(TripletRunParams),
    "supervised": typed(SupervisedParams),
    "supervised_*": typed(SupervisedParams),
    "evaluation": typed(EvaluationParams),
    "ctc": typed(ctc.CTCParams),
    "ctc.data": typed(SegmentDataParams),
    "ctc.decoding": typed(DecodingParams),
    "ctc.plots": typed(ctc.PlotParams),
    "ctc.*": typed(CTCTrainParams),  # the models: ctc.cnn, ctc.bilstm
    "sleep.synthetic": typed(SyntheticSleepConfig),
    "wav2vec.synthetic": typed(SyntheticSleepConfig),
    "sleep.ingestion": typed(sleep_epochs.IngestionParams),
    "wav2vec.ingestion": typed(sleep_epochs.IngestionParams),
    "sleep.training": typed(SleepStagerParams),
    "sleep.evaluation": typed(SleepEvaluationParams),
    "wav2vec.pretraining": typed(Wav2VecPretraining),
    "wav2vec.label_efficiency": typed(LabelEfficiencyParams),
    "afm.simulation": typed(AfmSimulationConfig),
    "afm.ingestion": typed(afm_curves.IngestionParams),
    "afm.preprocessing": typed(afm.PreprocessingParams),
    "afm.split": typed(afm.SplitParams),
    "afm.model": typed(CurveCNNParams),
    "afm.pretraining": typed(afm.PretrainingParams),
    "afm.finetuning": typed(afm.FinetuningParams),
    "afm.supervised": typed(afm.SupervisedParams),
    "afm.find_peaks": typed(PeakDetectorGrid),
    "afm.plots": typed(afm.PlotParams),
    "denoising": lambda values, key: denoising_params(values),
    "timeseries.ucr": lambda values, key: ucr_params(values),
    "timeseries.mnist1d": typed(Mnist1dParams),
    "generative.ddpm": typed(generative.DDPMRun),
    "generative.gan": typed(generative.GANRun),
    "generative.evaluation": typed(generative.EvaluationParams),
    # Inference pipelines (`<task>_inference`): the model choice and the input folder.
    "inference.digits": inference.typed_inference_params,
    "inference.sleep": inference.typed_inference_params,
    "inference.afm": inference.typed_inference_params,
    "inference.*": inference.check_any_inference_block,
    # no node reads it: the sweep runner checks it (and the project) before any trial
    "sweep": check_sweeps,
}


def check_for(key: str) -> Check | None:
    """The check of parameter block ``key`` (an exact key before a pattern), if any."""
    if key in CHECKS:
        return CHECKS[key]
    return next((check for pattern, check in CHECKS.items()
                 if fnmatch.fnmatchcase(key, pattern)), None)


def parameter_problems(blocks: Iterable[tuple[str, Any]]) -> list[str]:
    """Run the check of every ``(key, values)`` block; the error message of each block that
    fails (each names its parameter path), in order."""
    problems = []
    for key, values in blocks:
        check = check_for(key)
        if check is None:
            continue
        try:
            check(values, key)
        except (ParameterError, ValueError, TypeError, KeyError) as error:
            message = str(error.args[0] if isinstance(error, KeyError) and error.args
                          else error)
            problem = message if key.split(".")[0] in message else f"{key}: {message}"
            if problem not in problems:  # a block inside another is checked twice
                problems.append(problem)
    return problems
