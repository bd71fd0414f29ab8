"""Kedro hooks of the project (registered in ``settings.py``): each module holds one concern."""

from contrastive_signals.hooks.artifacts import ModelArtifactsHook
from contrastive_signals.hooks.checkpoints import CheckpointHook
from contrastive_signals.hooks.figures import NodeFiguresHook, TorchThreadsHook
from contrastive_signals.hooks.inference_models import InferenceModelHook
from contrastive_signals.hooks.isolation import RunIsolationHook
from contrastive_signals.hooks.orchestration import OrchestratedRunHook
from contrastive_signals.hooks.parameters import ParameterCheckHook
from contrastive_signals.hooks.run_status import RunStatusHook
from contrastive_signals.hooks.sweep import SweepTrialHook
from contrastive_signals.hooks.timeseries_denoising_models import TimeseriesDenoisingModelHook
from contrastive_signals.hooks.timeseries_sets import TimeseriesSetsHook

__all__ = ["CheckpointHook", "InferenceModelHook", "ModelArtifactsHook", "NodeFiguresHook", "OrchestratedRunHook",
           "ParameterCheckHook",
           "RunIsolationHook", "RunStatusHook", "SweepTrialHook",
           "TorchThreadsHook",
           "TimeseriesDenoisingModelHook", "TimeseriesSetsHook"]
