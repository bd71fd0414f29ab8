"""`make seeds PIPELINE=<name>`: one pipeline repeated over training seeds, then every figure of
its report as per-seed values, mean and standard deviation (the README's multi-seed figures).

Each seed is one ``kedro run --pipeline=<name> --params <seed keys>=<seed>`` in its own
throwaway project copy under ``--work-dir`` (reports and versioned models of concurrent seeds
never meet); every run logs to the project's MLflow store unless ``--own-stores``. Seeds run
``--parallel`` at a time, each with ``--threads`` torch threads (2 cores: ``--parallel 2
--threads 1`` finishes two seeds in about the time of one 2-thread run).

    python scripts/seed_runs.py denoising --seeds 0 1 2 --parallel 2 --threads 1
    python scripts/seed_runs.py afm --seeds 0 1 2 3 4 --params "afm.split.seed=1"
    python scripts/seed_runs.py denoising --env test --seeds 0 1   # tiny sizes (a minute)
    python scripts/seed_runs.py ctc --merge seeds012.json seeds34.json --out ctc_seeds.json

The result lands in ``--out`` (default ``data/08_reporting/<pipeline>_seeds.json``) with a
Markdown table beside it; the exit code is 0 only when every seed's run succeeded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from run_all import child_env, machine_info  # noqa: E402

from contrastive_signals.metrics.seeds import mean_and_std  # noqa: E402
from tests.e2e.golden import PIPELINE_REPORTS  # noqa: E402
from tests.e2e.project import make_project_copy  # noqa: E402

# The parameters a pipeline's "training seed" sets: model initialisation, batch order, views
# and draws of every network it trains. Data (simulation, splits) keeps its own seed, so that
# the spread is the training's, not the data's (vary those with --params when wanted).
SEED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "denoising": ("denoising.hvae.fit.seed", "denoising.unet.fit.seed"),
    # the pretrained, fine-tuned (and fresh) encoders, the supervised CNN, and which training
    # curves are labelled in the 5 % / 20 % subsets (the train/val/test split stays)
    "afm": ("afm.pretraining.fit.seed", "afm.finetuning.fit.seed",
            "afm.finetuning.head.fit.seed", "afm.supervised.fit.seed", "afm.split.label_seed"),
    # the digits path (`kedro run`): the four pretrained encoders, the three triplet encoders
    # (triplet_scratch and triplet_pretrained share `triplet`), the two supervised classifiers,
    # and the probes' draws (10-label subsets, RVFL hidden layer); the ingestion split stays
    "__default__": tuple(f"pretraining.{name}.fit.seed"
                         for name in ("simclr", "supcon", "simclr_vit", "supcon_vit"))
    + ("triplet.fit.seed", "triplet_vit.fit.seed", "supervised.fit.seed",
       "supervised_vit.fit.seed", "evaluation.seed"),
    # both CTC labellers (initialisation and their freshly generated training batches) and the
    # sleep stager; the CTC val/test sets, the synthetic nights and the subject split stay
    "ctc": ("ctc.cnn.fit.seed", "ctc.bilstm.fit.seed", "sleep.training.fit.seed"),
    # the UCR/UEA sets and MNIST-1D: every pretraining method's seed (TS2Vec's own draws follow
    # it), the random kernels of MiniRocket / MultiRocket, MNIST-1D's SimCLR encoder and
    # supervised CNN; the generated MNIST-1D set and the t-SNE / probe draws stay
    "timeseries_ucr": tuple(f"timeseries.ucr.methods.{name}.seed"
                            for name in ("ts2vec", "ts2vec_decorrelated", "patch_tst"))
    + ("timeseries.ucr.baselines.seed", "timeseries.mnist1d.baselines.seed",
       "timeseries.mnist1d.simclr.seed", "timeseries.mnist1d.supervised.fit.seed"),
    # the DDPM and the GAN, and the draws of the samples they are judged on; the judges (the
    # digits' SimCLR encoder and supervised CNN, trained first in each copy) keep their seeds,
    # and the synthetic-data study repeats its own seeds inside
    "generative_with_digits": ("generative.ddpm.fit.seed", "generative.gan.fit.seed",
                               "generative.evaluation.sample_seed"),
}
REPORTS: dict[str, str] = {name: next(iter(reports.values()))
                           for name, reports in PIPELINE_REPORTS.items()}
# `timeseries` without wav2vec (which repeats its seeds inside) writes the same report
REPORTS["timeseries_ucr"] = REPORTS["timeseries"]
REPORTS["generative_with_digits"] = "data/08_reporting/generative_metrics.json"


def seed_params(pipeline: str, seed: int, *, keys: Sequence[str] | None = None,
                extra: str = "") -> str:
    """The ``--params`` value of one seed's run: every seed key of ``pipeline`` (or ``keys``)
    set to ``seed``, then ``extra`` (``a.b=1,c=2``)."""
    keys = tuple(keys) if keys else SEED_PARAMETERS.get(pipeline, ())
    if not keys:
        raise ValueError(f"no seed parameters known for pipeline '{pipeline}' (known: "
                         f"{sorted(SEED_PARAMETERS)}); name them with --seed-param")
    return ",".join([f"{key}={seed}" for key in keys] + ([extra] if extra else []))


def summarise_seeds(reports: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, object]]:
    """``{figure: {"per_seed": {seed: value}, "mean", "std"}}`` over the figures every report
    has (``std``: the sample standard deviation, ddof 1; 0 for one seed). Wall-clock figures
    (``*seconds``) are summarised like the rest."""
    if not reports:
        raise ValueError("no successful seed run to summarise")
    names = sorted(set.intersection(*(set(r) for r in reports.values())))
    summary: dict[str, dict[str, object]] = {}
    for name in names:
        values = [float(reports[s][name]) for s in sorted(reports)]
        finite = [v for v in values if math.isfinite(v)]
        mean, std = mean_and_std(finite, ddof=1) if finite else (math.nan, 0.0)
        summary[name] = {"per_seed": {str(s): float(reports[s][name]) for s in sorted(reports)},
                         "mean": mean, "std": std}
    return summary


def merge_results(results: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """One result from several results of the same pipeline and environment over disjoint seeds
    (e.g. seeds 0-2, then 3-4): every seed's values re-summarised together; commands joined
    with `` + ``, per-seed params and times merged, load before the first and after the last.
    Only figures every seed reports are kept, as in :func:`summarise_seeds`. A seed that failed
    in one result and succeeded in another (its re-run) counts once, with the re-run's params
    and time."""
    if not results:
        raise ValueError("nothing to merge")
    for key in ("pipeline", "env"):
        values = {json.dumps(r[key]) for r in results}
        if len(values) > 1:
            raise ValueError(f"cannot merge results of different {key}s: {sorted(values)}")
    # a seed that failed in one result may be re-run in another; two successes repeat it
    succeeded = [s for r in results for s in r["seeds_ok"]]
    if len(set(succeeded)) != len(succeeded):
        raise ValueError(f"the results repeat a seed: {succeeded}")
    seeds = list(dict.fromkeys(s for r in results for s in r["seeds"]))
    reports: dict[int, dict[str, float]] = {}
    for result in results:
        for name, row in result["figures"].items():
            for seed, value in row["per_seed"].items():
                reports.setdefault(int(seed), {})[name] = value

    def same(key: str) -> object:
        values = [r[key] for r in results]
        return values[0] if all(v == values[0] for v in values) else "/".join(map(str, values))

    first, last = results[0], results[-1]
    return {
        "pipeline": first["pipeline"], "env": first["env"], "seeds": seeds,
        "seeds_ok": sorted(reports),
        "params": {k: v for r in results for k, v in r["params"].items()},
        "command": " + ".join(r["command"] for r in results),
        "parallel": same("parallel"), "threads": same("threads"),
        "run_seconds": {k: v for r in results for k, v in r["run_seconds"].items()},
        "load_before": first["load_before"], "load_after": last["load_after"],
        "machine": first["machine"],
        "figures": summarise_seeds(reports) if reports else {},
    }


def markdown(result: Mapping[str, object], *, pattern_filter: Sequence[str] = ()) -> str:
    """The figures as a table: name, mean +- std, per-seed values."""
    import fnmatch

    seeds = [str(s) for s in result["seeds_ok"]]
    lines = [f"# `{result['pipeline']}` over seeds {', '.join(seeds)}", "",
             f"Command: `{result['command']}`; {result['parallel']} at a time, "
             f"{result['threads'] or 'default'} torch threads each; load "
             f"{result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after.", "",
             "| figure | mean +- std | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    for name, row in result["figures"].items():
        if pattern_filter and not any(fnmatch.fnmatch(name, p) for p in pattern_filter):
            continue
        cells = " | ".join(f"{row['per_seed'][s]:.4g}" for s in seeds)
        lines.append(f"| `{name}` | {row['mean']:.4g} +- {row['std']:.2g} | {cells} |")
    return "\n".join(lines) + "\n"


def run_seed(pipeline: str, seed: int, *, params: str, project: Path, env: str | None,
             threads: int | None, tracking_uri: str | None) -> dict[str, object]:
    """One seed's ``kedro run`` in ``project`` (a fresh copy); its report, time and log."""
    project.mkdir(parents=True)
    make_project_copy(project)
    command = [sys.executable, "-m", "kedro", "run", f"--pipeline={pipeline}",
               f"--params={params}"] + ([f"--env={env}"] if env else [])
    env = child_env()
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    start = time.perf_counter()
    with open(project / "seed_run.log", "w") as log:
        returncode = subprocess.run(command, cwd=project, env=env, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    report_path = project / REPORTS[pipeline]
    report = (json.loads(report_path.read_text())
              if returncode == 0 and report_path.is_file() else None)
    print(f"seed_runs: {pipeline} seed {seed}: "
          f"{'ok' if report is not None else f'FAILED ({returncode})'} in {seconds:.0f} s "
          f"(log: {project / 'seed_run.log'})", flush=True)
    return {"seed": seed, "returncode": returncode, "report": report, "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", choices=sorted(REPORTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seed-param", action="append", default=None,
                        help="a parameter the seed sets (repeatable; default: the pipeline's)")
    parser.add_argument("--params", default="", help="more --params for every run")
    parser.add_argument("--env", default=None, help="Kedro environment (default: base+local)")
    parser.add_argument("--parallel", type=int, default=1, help="seeds run at a time")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per run (OMP_NUM_THREADS; default: torch's)")
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the per-seed project copies go "
                             "(default: <project>/data/11_seed_runs/<pipeline>)")
    parser.add_argument("--own-stores", action="store_true",
                        help="each copy keeps its own mlflow.db (default: the project's store)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="RESULT",
                        help="run nothing: merge these results of the pipeline (disjoint "
                             "seeds) into --out")
    args = parser.parse_args(argv)
    if args.parallel < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--parallel and --threads must be >= 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    project = args.project.resolve()
    out = args.out or project / "data" / "08_reporting" / f"{args.pipeline}_seeds.json"
    if args.merge:
        try:
            results = [json.loads(path.read_text()) for path in args.merge]
            if any(r["pipeline"] != args.pipeline for r in results):
                raise ValueError(f"not all of {[str(p) for p in args.merge]} are results of "
                                 f"'{args.pipeline}'")
            merged = merge_results(results)
        except (OSError, ValueError, KeyError) as error:
            parser.error(f"--merge: {error}")
        _write(out, merged)
        return 0
    try:
        per_seed_params = {s: seed_params(args.pipeline, s, keys=args.seed_param,
                                          extra=args.params) for s in args.seeds}
    except ValueError as error:
        parser.error(str(error))
    work_dir = (args.work_dir or project / "data" / "11_seed_runs" / args.pipeline).resolve()
    tracking_uri = None if args.own_stores else f"sqlite:///{project / 'mlflow.db'}"
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    load_before = os.getloadavg()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        runs = list(pool.map(
            lambda s: run_seed(args.pipeline, s, params=per_seed_params[s],
                               project=work_dir / f"{stamp}_seed{s}", env=args.env,
                               threads=args.threads, tracking_uri=tracking_uri),
            args.seeds))
    ok = {r["seed"]: r["report"] for r in runs if r["report"] is not None}
    result = {
        "pipeline": args.pipeline, "env": args.env, "seeds": args.seeds,
        "seeds_ok": sorted(ok), "params": per_seed_params,
        "command": " ".join(["python scripts/seed_runs.py", *(argv or sys.argv[1:])]),
        "parallel": args.parallel, "threads": args.threads,
        "run_seconds": {str(r["seed"]): round(r["seconds"], 1) for r in runs},
        "load_before": load_before, "load_after": os.getloadavg(),
        "machine": machine_info(project),
        "figures": summarise_seeds(ok) if ok else {},
    }
    _write(out, result)
    print(f"seed_runs: {len(ok)}/{len(runs)} seeds ok; figures in {out}")
    return 0 if len(ok) == len(runs) else 1


def _write(out: Path, result: Mapping[str, object]) -> None:
    """``out`` (JSON) and, when any seed succeeded, its Markdown table beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if result["figures"]:
        out.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    sys.exit(main())
