"""Kedro project settings."""

import os

from kedro.config import OmegaConfigLoader

from contrastive_signals.hooks import (
    CheckpointHook,
    InferenceModelHook,
    ModelArtifactsHook,
    NodeFiguresHook,
    OrchestratedRunHook,
    ParameterCheckHook,
    RunIsolationHook,
    RunStatusHook,
    SweepTrialHook,
    TimeseriesDenoisingModelHook,
    TimeseriesSetsHook,
    TorchThreadsHook,
)

# MLflow's usage telemetry stays off for this project (Kedro's is off through `.telemetry`).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Pluggy calls the last registered first: ModelArtifactsHook logs a saved file (this run's
# private copy, see hooks/isolation.py) before RunIsolationHook publishes it to data/ and
# pins its version; either order works.
HOOKS = (TorchThreadsHook(), NodeFiguresHook(), RunIsolationHook(), ModelArtifactsHook(),
         CheckpointHook(), ParameterCheckHook(), RunStatusHook(), InferenceModelHook(),
         OrchestratedRunHook(), SweepTrialHook(), TimeseriesDenoisingModelHook(),
         TimeseriesSetsHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/<env>/ overrides only the keys it names (conf/test shrinks epochs, say).
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
    # ${env:NAME,default} lets MLFLOW_TRACKING_URI point tracking at a server.
    "custom_resolvers": {"env": lambda name, default=None: os.environ.get(name, default)},
}
