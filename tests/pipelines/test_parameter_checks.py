"""Every parameter block of every pipeline is checked up front (hooks/parameters.py): each
node's ``params:`` input has a check, the shipped configurations pass, and each bad value the
issue lists fails naming its full path."""

from __future__ import annotations

import os
from functools import reduce

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from contrastive_signals.hooks.parameters import _device_problems, unwritable
from contrastive_signals.pipelines.parameter_checks import check_for, parameter_problems
from tests.e2e.project import PROJECT_ROOT

bootstrap_project(PROJECT_ROOT)
PARAMETER_KEYS = sorted({name.removeprefix("params:") for pipeline in pipelines.values()
                         for node in pipeline.nodes for name in node.inputs
                         if name.startswith("params:")})


def _nested(overrides: dict) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``, as `kedro run --params a.b=1` gives."""
    nested: dict = {}
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        reduce(lambda d, k: d.setdefault(k, {}), parents, nested)[last] = value
    return nested


def _merged_parameters(env: str | None, overrides: dict | None = None) -> dict:
    with KedroSession.create(PROJECT_ROOT, env=env,
                             runtime_params=_nested(overrides or {})) as session:
        return session.load_context().params


def _blocks(params: dict) -> list[tuple[str, object]]:
    return [(key, reduce(lambda d, k: d[k], key.split("."), params)) for key in PARAMETER_KEYS]


def test_every_parameter_input_of_every_pipeline_has_a_check():
    assert len(PARAMETER_KEYS) > 30
    missing = [key for key in PARAMETER_KEYS if check_for(key) is None]
    assert not missing, f"add checks for {missing} to pipelines/parameter_checks.py"


@pytest.mark.parametrize("env", ["base", "test"])
def test_the_shipped_parameters_pass(env):
    assert parameter_problems(_blocks(_merged_parameters(None if env == "base" else env))) == []


@pytest.mark.parametrize(("override", "path"), [
    ({"triplet.method.sampling": "hardest"}, "triplet"),
    ({"evaluation.tsne_perplexity": -5}, "evaluation"),
    ({"pretraining.simclr.encoder.config.batch_norm": "nope"}, "pretraining.simclr.encoder"),
    ({"pretraining.simclr.fit.epochs": 2.5}, "pretraining.simclr.fit.epochs"),
    ({"pretraining.simclr.fit.learning_rate": "abc"}, "pretraining.simclr.fit.learning_rate"),
    ({"ctc.cnn.fit.epochs": 0}, "ctc.cnn.fit"),
    ({"sleep.training.fit.learning_rate": "x"}, "sleep.training.fit.learning_rate"),
    ({"wav2vec.pretraining.fit.epochs": 1.5}, "wav2vec.pretraining.fit.epochs"),
    ({"wav2vec.pretraining.method.objective.targets": "kmeans"},
     "wav2vec.pretraining.method.objective: targets must be one of"),
    ({"afm.pretraining.batch_size": "big"}, "afm.pretraining.batch_size"),
    ({"timeseries.mnist1d.simclr.batch_size": 0.5}, "timeseries.mnist1d.simclr.batch_size"),
    ({"denoising.hvae.fit.epochs": -1}, "denoising.hvae.fit"),
    ({"inference.afm.model": "best"}, "inference.afm: model must be 'latest'"),
    ({"inference.sleep.model": 0}, "inference.sleep: model must be 'latest'"),
    ({"inference.digits.input_folder": "data/01_raw/inference/nowhere"},
     "inference.digits: input_folder 'data/01_raw/inference/nowhere' does not exist"),
    ({"inference.afm.variant": "deriv_pre_50pc"}, "inference.afm: variant must be one of"),
])
def test_a_bad_value_in_any_pipeline_is_named_by_its_path(override, path):
    problems = parameter_problems(_blocks(_merged_parameters("test", override)))
    assert len(problems) == 1, problems
    assert path in problems[0], problems


def test_cuda_without_cuda_names_the_device_parameter(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    problems = _device_problems([("pretraining.simclr", {"fit": {"device": "cuda"}})])
    assert problems and problems[0].startswith("pretraining.simclr.fit.device is 'cuda'")


def test_an_output_folder_that_cannot_be_written_is_named(tmp_path):
    blocked = tmp_path / "06_models"
    blocked.write_text("a file where the models folder should be")
    problems = unwritable([blocked / "simclr_encoder.pt", tmp_path / "fine"])
    assert len(problems) == 1 and str(blocked / "simclr_encoder.pt") in problems[0]
    assert (tmp_path / "fine").is_dir() and list((tmp_path / "fine").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_a_read_only_output_folder_is_named(tmp_path):
    locked = tmp_path / "06_models"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        problems = unwritable([locked])
    finally:
        locked.chmod(0o700)
    assert len(problems) == 1 and "not writable" in problems[0]
