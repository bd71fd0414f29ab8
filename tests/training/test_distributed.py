"""Data-parallel training (fit.strategy: ddp) on 2 gloo ranks of this machine, against one
process on the global batch, in float64. Several cases run inside one launch (a launch costs
5-10 s here); the per-rank functions live in :mod:`.distributed_cases`."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.training.distributed import (
    carry_context,
    free_port,
    learning_rate_multiplier,
    run_on_ranks,
)
from contrastive_signals.training.fit import FitConfig, fit
from contrastive_signals.training.ranks import (
    Ranks,
    gather_many_with_grad,
    gather_with_grad,
    local_forward,
    local_forward_rows,
    mean_over_ranks,
    rank_generator,
    ranks_context,
    shard,
)
from tests.training import distributed_cases as cases

ROOT = Path(__file__).resolve().parents[2]
TWO_RANKS = FitConfig(epochs=1, learning_rate=1e-3, strategy="ddp", devices=2, device="cpu")


def max_relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest |a - b| over all tensors, relative to the largest |b|."""
    scale = max(float(t.abs().max()) for t in b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True)) / scale


@pytest.fixture(scope="module")
def launched() -> dict[int, dict]:
    """Every per-rank case of this module from one launch of 2 ranks (with a context variable
    carried to the ranks, as a checkpoint policy would be)."""
    carry_context("tests.training.distributed_cases", "CARRIED")
    token = cases.CARRIED.set("set in the caller")
    try:
        return run_on_ranks(cases.everything, config=TWO_RANKS)
    finally:
        cases.CARRIED.reset(token)


def test_carried_context_variables_reach_every_rank(launched):
    assert [launched[rank]["carried"] for rank in (0, 1)] == ["set in the caller"] * 2


@pytest.fixture(scope="module")
def loss_cases(launched) -> dict[int, dict]:
    return {rank: value["losses"] for rank, value in launched.items()}


@pytest.mark.parametrize("name", [*cases.GATHERED, "wav2vec_contrastive", "wav2vec_diversity"])
def test_each_rank_has_the_one_process_loss_and_gradients(loss_cases, name):
    if name.startswith("wav2vec_"):
        reference = cases.wav2vec_case(name.removeprefix("wav2vec_"))
    else:
        reference = cases.gathered_case(name, "gather_with_grad")
    assert loss_cases[0]["rank"][0] == 0 and loss_cases[1]["rank"][0] == 1
    assert reference[0] > 1e-3  # a case with something to check
    for rank in (0, 1):
        loss, grads = loss_cases[rank][f"{name}/gather_with_grad"]
        assert math.isclose(loss, reference[0], rel_tol=1e-12), (rank, loss, reference[0])
        for got, want in zip(grads, reference[1], strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [*cases.GATHERED])
def test_the_check_catches_a_missing_gather_and_a_gather_without_all_reduce(loss_cases, name):
    reference = cases.gathered_case(name, "gather_with_grad")[1]
    for bug in ("no_gather", "gather_layer_bug"):
        assert max_relative(loss_cases[0][f"{name}/{bug}"][1], reference) > 1e-2, bug


def test_the_check_catches_pytorch_metric_learnings_efficient_wrapper(loss_cases):
    reference = cases.gathered_case("nt_xent", "gather_with_grad")
    loss, grads = loss_cases[0]["nt_xent/pml_efficient"]
    assert max_relative(grads, reference[1]) > 1e-2


def test_wav2vec_diversity_without_the_reduction_differs(loss_cases):
    # a rank's own codeword use is not the batch's: the reduction matters for this term
    reference = cases.wav2vec_case("diversity")[0]
    with ranks_context(Ranks(rank=0, world_size=1)):
        x = cases.inputs((cases.T, cases.D_IN), seed=4)[: cases.N // 2]
        probs = cases.layer(seed=5, out=cases.GROUPS * cases.ENTRIES)(x).reshape(
            -1, cases.GROUPS, cases.ENTRIES).softmax(-1).mean(0)
        local = 1 - float(cases.perplexity(probs).detach()) / (cases.GROUPS * cases.ENTRIES)
    assert abs(local - reference) > 1e-3


@pytest.mark.parametrize("name", [*cases.SUPERVISED])
def test_supervised_methods_shard_the_batch_and_keep_the_one_process_gradients(launched, name):
    loss, grads, seen = cases.supervised_case(name)
    hvae = name.startswith("hvae_split")  # both HVAE cases: every pair, and a share of them
    rows = 6 if hvae else 4  # the HVAE's forward sees clean and noisy images
    assert seen == [rows]  # one process: the whole batch in one forward
    for rank in (0, 1):
        rank_loss, rank_grads, rank_seen = launched[rank]["supervised"][name]
        assert rank_seen == [rows // 2], (rank, rank_seen)  # each rank runs only its half
        # CTC, the stager's joint loss and the HVAE's latents compute in float32 by design
        # (losses/ctc.py, models/sleep.py, models/hvae.py): equal to float32 rounding
        tolerance = 1e-5 if hvae else {"image_regression": 1e-12}.get(name, 1e-6)
        assert math.isclose(rank_loss, loss, rel_tol=tolerance), (rank, rank_loss, loss)
        assert max_relative(rank_grads, grads) < tolerance, (rank, name)


def test_a_row_count_that_does_not_split_is_padded_and_keeps_the_one_process_gradients(
        launched):
    loss, grads, seen = cases.odd_rows_case()
    assert seen == [5, 5]
    for rank in (0, 1):
        rank_loss, rank_grads, rank_seen = launched[rank]["odd_rows"]
        assert rank_seen == [3, 3], (rank, rank_seen)  # 5 rows padded to 6, 3 a rank
        assert math.isclose(rank_loss, loss, rel_tol=1e-12), (rank, rank_loss, loss)
        assert max_relative(rank_grads, grads) < 1e-12, rank


def test_three_steps_on_two_ranks_give_the_parameters_of_one_process(launched):
    per_rank = {rank: value["fits"] for rank, value in launched.items()}
    for bn in (False, True):
        reference, seen = cases.simclr_fit(bn, per_shard=2 if bn else 0)
        for rank in (0, 1):
            params, shards = per_rank[rank][f"bn={bn}"]
            assert params.keys() == reference.keys()
            for key in reference:
                torch.testing.assert_close(params[key], reference[key], rtol=0, atol=1e-10,
                                           msg=f"bn={bn} rank {rank} {key}")
        # 3 steps; each step's shards are disjoint, equal and cover the global batch
        steps = [(per_rank[0][f"bn={bn}"][1][s], per_rank[1][f"bn={bn}"][1][s]) for s in range(3)]
        assert len(per_rank[0][f"bn={bn}"][1]) == 3
        for step, (a, b) in enumerate(steps):
            assert len(a) == len(b) == cases.FIT_BATCH // 2
            assert not set(a) & set(b)
            assert sorted(a + b) == sorted(seen[step])


def test_denoising_validation_is_shared_out_and_equals_one_process(launched):
    """Each rank decodes its share of the validation images (5: padded to 6) and gets every
    output: the scores of one process, on both ranks."""
    expected = cases.validation_case()
    assert expected["hvae_rows"] == expected["unet_rows"] == 5
    for rank in (0, 1):
        scores = launched[rank]["validation"]
        assert scores["hvae_rows"] == scores["unet_rows"] == 3
        for name in ("swap_psnr", "denoiser_psnr"):
            assert scores[name] == pytest.approx(expected[name], rel=1e-6)


@pytest.mark.timeout(180)
def test_a_failing_rank_raises_its_own_error_in_the_caller_without_hanging():
    model = nn.Linear(3, 1)
    data = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    config = FitConfig(epochs=3, learning_rate=1e-2, strategy="ddp", devices=2, progress=False,
                       name="failing", device="cpu")
    start = time.perf_counter()
    with pytest.raises(FloatingPointError, match="failing: loss became nan") as raised:
        fit(model, loss_fn=cases.failing_loss, config=config,
            batches=lambda epoch, generator: ((data[i:i + 4],) for i in range(0, 16, 4)))
    assert "ChildFailedError" in type(raised.value.__cause__).__name__
    assert time.perf_counter() - start < 120


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_nodes_join_through_the_localhost_rendezvous(tmp_path):
    """Two processes ("machines") of one rank each, same endpoint: the same trained model on
    both, equal to one process on the global batch."""
    port = free_port()
    script = textwrap.dedent(f"""
        import sys, torch
        from tests.training.distributed_cases import simclr_fit
        params, _ = simclr_fit(False, strategy="ddp", devices=1, nodes=2,
                               rdzv_endpoint="127.0.0.1:{port}")
        torch.save(params, sys.argv[1])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"node{i}.pt")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    outputs = [node.communicate(timeout=200)[0].decode() for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    reference, _ = cases.simclr_fit(False)
    for i in range(2):
        params = torch.load(tmp_path / f"node{i}.pt")
        for key in reference:
            torch.testing.assert_close(params[key], reference[key], rtol=0, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_two_nccl_ranks_give_the_parameters_of_one_gpu():
    """The fit-level check on GPUs: nccl (backend auto), each rank on its own GPU, float64."""
    reference, _ = cases.simclr_fit(False, device="cuda")
    params, _ = cases.simclr_fit(False, strategy="ddp", devices=2, device="cuda")
    for key in reference:
        torch.testing.assert_close(params[key], reference[key], rtol=0, atol=1e-8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sync_batchnorm_is_accepted_on_cuda():
    config = FitConfig(epochs=1, learning_rate=0.1, strategy="ddp", device="cuda",
                       sync_batchnorm=True)
    assert config.sync_batchnorm


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_wav2vec_on_two_ranks_returns_its_history_and_schedule_state():
    """wav2vec's reductions under DDP end to end through the launcher: the node's method gets
    the schedule's state back (6 steps), the history has every part, validation included."""
    method, result = cases.wav2vec_fit(strategy="ddp", devices=2)
    assert method.steps == 6 and method.temperature == pytest.approx(0.5)
    for key in ("train_loss", "contrastive", "diversity", "accuracy", "val_loss", "temperature"):
        assert len(result.history[key]) == 2 and all(map(math.isfinite, result.history[key]))
    single, reference = cases.wav2vec_fit()
    assert result.history["train_loss"] != reference.history["train_loss"]  # per-rank draws
    assert abs(result.history["train_loss"][0] - reference.history["train_loss"][0]) < 0.5


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_wav2vec_cluster_targets_reach_every_rank_with_the_method():
    """The k-means centres are fitted before the launch and travel with the method: two ranks
    score against the same targets as one process (level losses, other draws per rank), and
    DDP runs without searching for unused parameters."""
    method, result = cases.wav2vec_fit(targets="clusters", strategy="ddp", devices=2)
    for key in ("train_loss", "cluster_cross_entropy", "cluster_accuracy", "target_perplexity",
                "val_loss"):
        assert len(result.history[key]) == 2 and all(map(math.isfinite, result.history[key]))
    single, reference = cases.wav2vec_fit(targets="clusters")
    assert torch.equal(method.targets.centres, single.targets.centres) and method.steps == 6
    assert result.history["train_loss"] != reference.history["train_loss"]  # per-rank draws
    assert abs(result.history["train_loss"][0] - reference.history["train_loss"][0]) < 0.3


# ---- one process: the helpers are the identity, the parameters are checked ----------------

def test_helpers_are_the_identity_in_one_process():
    x = torch.randn(6, 3)
    generator = torch.Generator().manual_seed(0)
    assert gather_with_grad(x) is x and shard(x) is x and rank_generator(generator) is generator
    assert mean_over_ranks(x) is x
    assert local_forward(lambda t, g: t * 2, x, generator=generator).equal(x * 2)
    assert local_forward_rows(lambda t: t * 2, x[:5]).equal(x[:5] * 2)  # any row count
    pair = [x, x[:1]]
    assert all(a is b for a, b in zip(gather_many_with_grad(pair), pair, strict=True))
    with ranks_context(Ranks(rank=0, world_size=1)):  # a one-rank ddp run: still the identity
        assert gather_with_grad(x) is x and shard(x) is x


def test_shards_are_equal_and_refuse_a_batch_that_does_not_split():
    assert Ranks(rank=1, world_size=2).shard(8) == slice(4, 8)
    with pytest.raises(ValueError, match="does not split into 2 equal shards"):
        Ranks(rank=0, world_size=2).shard(7)


def test_rank_generators_differ_between_ranks_and_leave_the_shared_one_alone():
    shared = torch.Generator().manual_seed(5)
    state = shared.get_state()
    draws = []
    for rank in (0, 1):
        with ranks_context(Ranks(rank=rank, world_size=2)):
            draws.append(torch.rand(4, generator=rank_generator(shared)))
    assert not draws[0].equal(draws[1]) and shared.get_state().equal(state)


@pytest.mark.parametrize(("fields", "message"), [
    ({"strategy": "horovod"}, "strategy must be one of"),
    ({"strategy": "ddp", "devices": 0}, "devices must be an integer >= 1 or 'auto'"),
    ({"strategy": "ddp", "devices": "all"}, "devices must be an integer >= 1 or 'auto'"),
    ({"devices": "auto"}, "devices: auto needs strategy: ddp"),
    ({"devices": 2}, "need strategy: ddp"),
    ({"strategy": "ddp", "nodes": 2}, "needs rdzv_endpoint"),
    ({"strategy": "ddp", "rdzv_endpoint": "localhost"}, "rdzv_endpoint must be host:port"),
    ({"strategy": "ddp", "lr_scaling": "cubic"}, "lr_scaling must be one of"),
    ({"strategy": "ddp", "device": "cpu", "sync_batchnorm": True}, "sync_batchnorm: true needs CUDA"),
    ({"strategy": "ddp", "device": "cpu", "backend": "nccl"}, "backend: nccl needs CUDA"),
])
def test_bad_strategy_parameters_are_parameter_errors(fields, message):
    with pytest.raises(ParameterError, match=f"pretraining.simclr.fit: .*{message}"):
        from_params(FitConfig, {"epochs": 1, "learning_rate": 0.1, **fields},
                    path="pretraining.simclr.fit")


@pytest.mark.parametrize(("cores", "devices", "strategy"), [(2, 2, "ddp"), (16, 2, "ddp"),
                                                           (1, 1, "single")])
def test_auto_devices_are_two_ranks_on_a_cpu_of_two_cores_and_one_process_on_one(
        monkeypatch, cores, devices, strategy):
    import contrastive_signals.training.fit as fit_module

    monkeypatch.setattr(fit_module, "available_cores", lambda: cores)
    config = FitConfig(epochs=1, learning_rate=0.1, strategy="ddp", devices="auto",
                       device="cpu")
    resolved = fit_module.resolve_devices(config)
    assert (resolved.devices, resolved.strategy) == (devices, strategy)
    assert fit_module.resolve_devices(TWO_RANKS) is TWO_RANKS  # a number stays as it is


def test_learning_rate_scaling_follows_the_world_size():
    config = FitConfig(epochs=1, learning_rate=0.1, strategy="ddp", devices=2, nodes=2,
                       rdzv_endpoint="10.0.0.1:29400")
    assert learning_rate_multiplier(config) == 1.0
    assert learning_rate_multiplier(FitConfig(**{**vars(config), "lr_scaling": "linear"})) == 4.0
    assert learning_rate_multiplier(FitConfig(**{**vars(config), "lr_scaling": "sqrt"})) == 2.0
    single = FitConfig(epochs=1, learning_rate=0.1, lr_scaling="linear")
    assert learning_rate_multiplier(single) == 1.0
