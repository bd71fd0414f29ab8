"""Kill a real `kedro run` with SIGKILL right after a training node wrote its first checkpoint,
rerun the same command, and compare with an uninterrupted run: the resumed run continues from
the checkpoint (the log says after which epoch) and ends with bit-identical models and
histories. One case per pipeline, each in its conf/test sizes with a longer training node."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from tests.e2e.project import kedro, make_project_copy, signal_when, start_kedro

pytestmark = pytest.mark.slow

EVERY_EPOCH = "runtime.checkpoints.every_epochs=1"
# pipeline case -> (kedro run arguments, node whose checkpoint is awaited, its checkpoint file)
CASES = {
    "digits": (["--to-nodes=simclr.train_contrastive_encoder",
                "--params", f"pretraining.simclr.fit.epochs=12,{EVERY_EPOCH}"],
               "simclr.train_contrastive_encoder", "fit0.pt"),
    "ctc": (["--pipeline=ctc", "--to-nodes=ctc_cnn.train_ctc_model",
             "--params", f"ctc.cnn.fit.epochs=10,ctc.cnn.steps_per_epoch=8,{EVERY_EPOCH}"],
            "ctc_cnn.train_ctc_model", "fit0.pt"),
    "afm": (["--pipeline=afm", "--to-nodes=afm_pretrain_deriv",
             "--params", f"afm.pretraining.fit.epochs=10,{EVERY_EPOCH}"],
            "afm_pretrain_deriv", "fit0.pt"),
    # two fits in one node (the set's namespace): the first finishes, the kill lands in the second
    "timeseries": (["--pipeline=timeseries", "--to-nodes=ucr_ItalyPowerDemand.pretrain_ucr_encoders",
                    "--params", "timeseries.ucr.methods.ts2vec.iterations=20,"
                    f"timeseries.ucr.methods.patch_tst.iterations=60,{EVERY_EPOCH}"],
                   "ucr_ItalyPowerDemand.pretrain_ucr_encoders", "fit1.pt"),
    "denoising": (["--pipeline=denoising", "--to-nodes=train_denoising_unet",
                   "--params", f"denoising.unet.fit.epochs=8,{EVERY_EPOCH}"],
                  "train_denoising_unet", "fit0.pt"),
}


def _tensors(value, prefix=""):
    """Every tensor inside a saved bundle, by its path."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    if isinstance(value, dict):
        return {k: t for key, item in value.items() for k, t in _tensors(item, f"{prefix}/{key}").items()}
    if isinstance(value, (list, tuple)):
        return {k: t for i, item in enumerate(value) for k, t in _tensors(item, f"{prefix}/{i}").items()}
    return {}


def _outputs(project: Path) -> dict[str, object]:
    """The trained models (tensors by file and key, version folders dropped) and the
    histories of a run, without wall-clock figures."""
    found: dict[str, object] = {}
    for path in sorted((project / "data" / "06_models").rglob("*.pt")):
        if path.is_dir():
            continue  # a versioned dataset's folder
        name = path.name if path.parent.name != path.name else path.parent.name
        found[f"model:{name}"] = _tensors(torch.load(path, map_location="cpu", weights_only=True))
    for path in sorted((project / "data" / "07_model_output").rglob("*.json")):
        found[f"json:{path.name}"] = {k: v for k, v in json.loads(path.read_text()).items()
                                      if "seconds" not in k}
    return found


def _assert_equal_outputs(resumed: dict, reference: dict) -> None:
    assert any(name.startswith("model:") for name in reference), reference.keys()
    assert resumed.keys() == reference.keys()
    for name, value in reference.items():
        if name.startswith("model:"):
            assert value.keys() == resumed[name].keys(), name
            for key, tensor in value.items():
                assert torch.equal(tensor, resumed[name][key]), f"{name} {key}"
        else:
            assert resumed[name] == value, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_killed_run_resumes_and_ends_bit_identical(tmp_path, case):
    args, node, checkpoint = CASES[case]
    command = ["run", "--env=test", *args]
    for name in ("reference", "killed"):
        (tmp_path / name).mkdir()
    reference = make_project_copy(tmp_path / "reference")
    kedro(reference, *command)

    project = make_project_copy(tmp_path / "killed")
    process = start_kedro(project, *command, log=tmp_path / "killed.log")
    folder = project / "data" / "09_checkpoints" / node
    written = signal_when(process, folder, f"*/{checkpoint}", signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    assert written.exists()

    rerun = kedro(project, *command)
    log = rerun.stdout + rerun.stderr
    assert "resumed from" in log, log[-3000:]
    assert not folder.exists(), "the node's checkpoints stay after its outputs were saved"
    _assert_equal_outputs(_outputs(project), _outputs(reference))
