"""scripts/seed_runs.py: seed parameters, the per-seed summary, bad arguments, and one real
two-seed run of the tiny denoising pipeline (each seed in its own project copy)."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conf_parameters import conf_parameters

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "seed_runs.py"


def _load():
    spec = importlib.util.spec_from_file_location("seed_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed_runs = _load()


def test_seed_params_set_every_seed_key_then_the_extra_params():
    assert seed_runs.seed_params("denoising", 3) == \
        "denoising.hvae.fit.seed=3,denoising.unet.fit.seed=3"
    assert seed_runs.seed_params("denoising", 1, keys=["a.seed"], extra="b.c=2") == \
        "a.seed=1,b.c=2"
    with pytest.raises(ValueError, match="no seed parameters known for pipeline 'timeseries'"):
        seed_runs.seed_params("timeseries", 0)


def _lookup(params: dict, key: str):
    block = params
    for name in key.split("."):
        assert isinstance(block, dict) and name in block, f"{key}: no '{name}' in conf/base"
        block = block[name]
    return block


@pytest.mark.parametrize("pipeline", sorted(seed_runs.SEED_PARAMETERS))
def test_every_seed_key_is_a_seed_of_conf_base(pipeline):
    """A typo in SEED_PARAMETERS would only add an unused parameter to the run (Kedro takes any
    ``--params`` key), and every seed would repeat the same figures: each key must be an
    integer (or null) parameter of conf/base named like a seed, and the seed sets them all."""
    params = conf_parameters()
    keys = seed_runs.SEED_PARAMETERS[pipeline]
    assert len(set(keys)) == len(keys)
    for key in keys:
        value = _lookup(params, key)
        assert key.rsplit(".", 1)[1].endswith("seed"), key
        assert value is None or (isinstance(value, int) and not isinstance(value, bool)), key
    assert seed_runs.seed_params(pipeline, 7) == ",".join(f"{key}=7" for key in keys)


def test_every_seeded_pipeline_is_registered_and_has_a_report():
    """``make seeds PIPELINE=<name>`` reads ``REPORTS[name]`` after each run: a pipeline with
    seed keys but no report (or no such pipeline) would fail only after its first seed."""
    from contrastive_signals.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    for name in seed_runs.SEED_PARAMETERS:
        assert name in pipelines, name
        assert seed_runs.REPORTS[name].startswith("data/08_reporting/"), name


def _seeds_read(pipeline: str, params: dict) -> set[str]:
    """Every parameter named ``*seed`` under the ``params:`` inputs of ``pipeline``."""
    from contrastive_signals.pipeline_registry import register_pipelines

    def walk(block, prefix):
        if isinstance(block, dict):
            for name, value in block.items():
                yield from walk(value, f"{prefix}.{name}")
        else:
            yield prefix

    inputs = [name.removeprefix("params:") for name in register_pipelines()[pipeline].inputs()
              if name.startswith("params:")]
    return {key for name in inputs for key in walk(_lookup(params, name), name)
            if key.rsplit(".", 1)[1].endswith("seed")}


@pytest.mark.parametrize("pipeline, trained, kept", [
    ("afm", {"afm.pretraining.fit.seed", "afm.finetuning.fit.seed", "afm.finetuning.head.fit.seed",
             "afm.supervised.fit.seed", "afm.split.label_seed"},
     {"afm.simulation.seed", "afm.split.seed", "afm.plots.seed"}),
    ("__default__", {f"pretraining.{name}.fit.seed" for name in
                     ("simclr", "supcon", "simclr_vit", "supcon_vit")}
     | {"triplet.fit.seed", "triplet_vit.fit.seed", "supervised.fit.seed",
        "supervised_vit.fit.seed", "evaluation.seed"},
     {"ingestion.split.seed"}),
    ("ctc", {"ctc.cnn.fit.seed", "ctc.bilstm.fit.seed", "sleep.training.fit.seed"},
     {"ctc.data.val_seed", "ctc.data.test_seed", "sleep.synthetic.seed",
      "sleep.ingestion.split.seed"}),
    ("denoising", {"denoising.hvae.fit.seed", "denoising.unet.fit.seed"},
     {"denoising.data.seed", "denoising.evaluation.seed"}),
    ("timeseries_ucr", {f"timeseries.ucr.methods.{name}.seed"
                        for name in ("ts2vec", "ts2vec_decorrelated", "patch_tst")}
     | {"timeseries.ucr.baselines.seed", "timeseries.mnist1d.baselines.seed",
        "timeseries.mnist1d.simclr.seed", "timeseries.mnist1d.supervised.fit.seed"},
     {"timeseries.ucr.evaluation.seed", "timeseries.mnist1d.seed"}),
    ("generative_with_digits", {"generative.ddpm.fit.seed", "generative.gan.fit.seed",
                                "generative.evaluation.sample_seed"},
     {"ingestion.split.seed", "pretraining.simclr.fit.seed", "supervised.fit.seed"}),
])
def test_the_seed_sets_every_trained_network_but_not_the_data(pipeline, trained, kept):
    """Of the seeds the pipeline reads, those of every network it trains (and its draws of
    labels and probes) follow the seed; the simulated or embedded data, its split, the swap
    donors and plotted samples stay, so the spread is the training's. A network added to a
    pipeline with its own seed fails here until it is sorted into one of the two."""
    params = conf_parameters()
    keys = set(seed_runs.SEED_PARAMETERS[pipeline])
    assert keys == trained
    assert _seeds_read(pipeline, params) == trained | kept


def test_summary_keeps_per_seed_values_mean_and_sample_std():
    reports = {0: {"a": 1.0, "b": 2.0, "only0": 5.0}, 1: {"a": 3.0, "b": 2.0},
               2: {"a": 5.0, "b": 2.0}}
    summary = seed_runs.summarise_seeds(reports)
    assert sorted(summary) == ["a", "b"]  # only figures every seed reports
    assert summary["a"]["per_seed"] == {"0": 1.0, "1": 3.0, "2": 5.0}
    assert summary["a"]["mean"] == 3.0 and summary["a"]["std"] == statistics.stdev([1, 3, 5])
    assert summary["b"]["std"] == 0.0
    assert seed_runs.summarise_seeds({4: {"a": 1.0}})["a"]["std"] == 0.0
    with pytest.raises(ValueError, match="no successful seed run"):
        seed_runs.summarise_seeds({})


def _result(pipeline: str, reports: dict[int, dict[str, float]], **extra) -> dict:
    """A result as the script writes it, without running anything."""
    seeds = sorted(reports)
    return {"pipeline": pipeline, "env": None, "seeds": seeds, "seeds_ok": seeds,
            "params": {str(s): f"x.seed={s}" for s in seeds},
            "command": f"python scripts/seed_runs.py {pipeline} --seeds {seeds}",
            "parallel": 1, "threads": 1, "run_seconds": {str(s): 10.0 + s for s in seeds},
            "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 2.0, 2.0], "machine": {},
            "figures": seed_runs.summarise_seeds(reports), **extra}


def test_merged_results_equal_one_run_over_all_their_seeds(tmp_path):
    reports = {0: {"a": 1.0, "b": 4.0}, 1: {"a": 3.0, "b": 4.0}, 2: {"a": 2.0, "b": 5.0},
               3: {"a": 8.0, "b": 1.0, "only3": 1.0}}
    first = _result("ctc", {s: reports[s] for s in (0, 1, 2)})
    second = _result("ctc", {3: reports[3]}, load_after=[3.0, 3.0, 3.0])
    merged = seed_runs.merge_results([first, second])
    assert merged["figures"] == seed_runs.summarise_seeds(reports)
    assert merged["seeds_ok"] == [0, 1, 2, 3] and merged["params"]["3"] == "x.seed=3"
    assert merged["command"] == first["command"] + " + " + second["command"]
    assert merged["run_seconds"] == {"0": 10.0, "1": 11.0, "2": 12.0, "3": 13.0}
    assert merged["load_before"] == [1.0] * 3 and merged["load_after"] == [3.0] * 3
    with pytest.raises(ValueError, match="repeat a seed"):
        seed_runs.merge_results([first, first])
    with pytest.raises(ValueError, match="different pipelines"):
        seed_runs.merge_results([first, _result("afm", {3: reports[3]})])
    with pytest.raises(ValueError, match="nothing to merge"):
        seed_runs.merge_results([])
    # a seed that failed (out of memory) and was re-run on its own counts once, re-run's time
    failed = {**_result("ctc", {s: reports[s] for s in (0, 1)}), "seeds": [0, 1, 2],
              "run_seconds": {"0": 10.0, "1": 11.0, "2": 104.0}}
    rerun = _result("ctc", {2: reports[2]}, run_seconds={"2": 709.0})
    merged = seed_runs.merge_results([failed, rerun])
    assert merged["seeds"] == merged["seeds_ok"] == [0, 1, 2]
    assert merged["run_seconds"]["2"] == 709.0
    assert merged["figures"] == seed_runs.summarise_seeds({s: reports[s] for s in (0, 1, 2)})
    # the command line: the merged JSON and its table, no run; a wrong pipeline exits 2
    paths = []
    for name, result in (("first", first), ("second", second)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(result))
    out = tmp_path / "merged.json"
    assert seed_runs.main(["ctc", "--merge", *map(str, paths), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["figures"]["a"]["per_seed"]["3"] == 8.0
    assert "| `a` | 3.5 +- 3.1 | 1 | 3 | 2 | 8 |" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit) as error:
        seed_runs.main(["afm", "--merge", *map(str, paths), "--out", str(out)])
    assert error.value.code == 2


@pytest.mark.parametrize("args, message", [
    (["denoising", "--seeds", "1", "1"], "repeats a seed"),
    (["denoising", "--parallel", "0"], "--parallel and --threads must be >= 1"),
    (["timeseries"], "no seed parameters known"),
    (["nope"], "invalid choice"),
])
def test_bad_arguments_fail_before_any_run(args, message, tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), *args, "--work-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_denoising_seeds_in_parallel(tmp_path):
    out = tmp_path / "denoising_seeds.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "denoising", "--env", "test", "--seeds", "0", "1",
         "--parallel", "2", "--threads", "1", "--work-dir", str(tmp_path / "runs"),
         "--own-stores", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["seeds_ok"] == [0, 1]
    assert summary["params"]["1"].startswith("denoising.hvae.fit.seed=1,")
    psnr = summary["figures"]["denoise.hvae_swap.v8.psnr"]
    values = list(psnr["per_seed"].values())
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
    assert values[0] != values[1]  # the seed reached the training
    assert psnr["mean"] == pytest.approx(sum(values) / 2)
    # the FBP input does not depend on the training seed
    assert summary["figures"]["denoise.fbp.v8.psnr"]["std"] == 0.0
    for seed in (0, 1):
        report = json.loads(next((tmp_path / "runs").glob(f"*_seed{seed}")).joinpath(
            "data/08_reporting/denoising_metrics.json").read_text())
        assert report["denoise.hvae_swap.v8.psnr"] == psnr["per_seed"][str(seed)]
    assert "| `denoise.hvae_swap.v8.psnr` |" in out.with_suffix(".md").read_text()
