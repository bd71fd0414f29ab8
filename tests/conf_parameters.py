"""The project's parameters as its config loader reads them, for tests of conf/ itself."""

from pathlib import Path

from kedro.config import OmegaConfigLoader

from contrastive_signals.settings import CONFIG_LOADER_ARGS

CONF = Path(__file__).resolve().parents[1] / "conf"


def conf_parameters(env: str | None = None) -> dict:
    """conf/base's parameters merged with conf/``env``'s as the project merges them
    (interpolations resolved); conf/base alone when ``env`` is None. conf/local is never read,
    so a developer's local overrides cannot change what a test sees."""
    args = {**CONFIG_LOADER_ARGS, "default_run_env": env or CONFIG_LOADER_ARGS["base_env"]}
    return OmegaConfigLoader(str(CONF), **args)["parameters"]
