"""A run loads the model versions it saved itself, whatever another run saves meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from kedro.io import DataCatalog

from contrastive_signals.hooks.isolation import RunIsolationHook, pin_load_to_saved_version

CONFIG = {"model": {"type": "contrastive_signals.io.torch_dataset.TorchDataset",
                    "filepath": "{folder}/model.pt", "versioned": True}}


def _catalog(folder, save_version, load_versions=None):
    config = {"model": {**CONFIG["model"], "filepath": str(folder / "model.pt")}}
    return DataCatalog.from_config(config, save_version=save_version,
                                   load_versions=load_versions or {})


def _run_saves(catalog, value):
    hook = RunIsolationHook()
    hook.after_catalog_created(catalog)
    catalog.save("model", {"w": torch.tensor([value])})
    hook.after_dataset_saved("model", None)


def test_each_run_loads_its_own_version_when_another_run_saves_later(tmp_path):
    first, second = _catalog(tmp_path, "2026-01-01T00.00.00.000Z"), _catalog(
        tmp_path, "2026-01-01T00.00.03.000Z")
    # the run that started later (newer version name) saves first, as a shorter run does
    _run_saves(second, 2.0)
    _run_saves(first, 1.0)
    assert first.load("model")["w"].item() == 1.0
    assert second.load("model")["w"].item() == 2.0


def test_without_the_hook_the_first_run_reads_the_other_runs_model(tmp_path):
    """The bug the hook removes (the check can fail)."""
    first, second = _catalog(tmp_path, "2026-01-01T00.00.00.000Z"), _catalog(
        tmp_path, "2026-01-01T00.00.03.000Z")
    second.save("model", {"w": torch.tensor([2.0])})
    first.save("model", {"w": torch.tensor([1.0])})  # Kedro warns: load version differs
    assert first.load("model")["w"].item() == 2.0


def test_explicit_load_versions_and_unversioned_datasets_are_left_alone(tmp_path):
    old = _catalog(tmp_path, "2026-01-01T00.00.00.000Z")
    old.save("model", {"w": torch.tensor([1.0])})
    pinned = _catalog(tmp_path, "2026-01-02T00.00.00.000Z",
                      load_versions={"model": "2026-01-01T00.00.00.000Z"})
    _run_saves(pinned, 2.0)
    assert pinned.load("model")["w"].item() == 1.0
    assert pin_load_to_saved_version(object()) is None


def _report_catalog(folder):
    return DataCatalog.from_config({"report": {"type": "json.JSONDataset",
                                               "filepath": str(folder / "report.json")}})


def test_an_unversioned_file_is_read_back_from_the_runs_own_copy_and_published(tmp_path):
    catalog, other = _report_catalog(tmp_path), _report_catalog(tmp_path)
    hook = RunIsolationHook()
    hook.after_catalog_created(catalog)
    hook.before_pipeline_run()
    hook.before_dataset_saved("report")
    catalog.save("report", {"run": "mine"})
    hook.after_dataset_saved("report", None)
    assert json.loads((tmp_path / "report.json").read_text()) == {"run": "mine"}  # published
    other.save("report", {"run": "other"})  # another run writes data/ meanwhile
    assert catalog.load("report") == {"run": "mine"}
    private = Path(catalog.get("report")._filepath)
    assert private.name == "report.json" and private.parent.parent != tmp_path
    hook.after_pipeline_run()
    assert not private.exists()
    assert json.loads((tmp_path / "report.json").read_text()) == {"run": "other"}  # last writer
