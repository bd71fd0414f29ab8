"""Register the best logged inference model of a task in the MLflow model registry.

    python scripts/register_model.py sleep                 # best sleep.kappa, alias champion
    python scripts/register_model.py sleep sleep_edf afm   # several kinds, each its best
    python scripts/register_model.py digits --metric map   # best <encoder>.map
    python scripts/register_model.py sleep --model-id m-...  # that logged model
    python scripts/register_model.py timeseries   # best mean ts.<Dataset>.<method>.svm.acc
    python scripts/register_model.py denoising    # best mean denoise.hvae_swap.v*.psnr

The registered model is named after the task and gets the alias (default ``champion``):
``mlflow.pyfunc.load_model("models:/sleep@champion")``, ``make serve MODEL=sleep``. The store
is ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``, the project's).
"""

from __future__ import annotations

import argparse
import os
import sys

import mlflow

from contrastive_signals.io.mlflow_models import TASKS, register_best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="+", choices=TASKS)
    parser.add_argument("--metric", help="the figure to maximise (default per task)")
    parser.add_argument("--model-id", help="register this logged model instead of the best")
    parser.add_argument("--alias", default="champion")
    args = parser.parse_args(argv)
    if args.model_id and len(args.task) > 1:
        parser.error("--model-id names one model: give one task with it")
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    for task in args.task:
        try:
            model_id, version = register_best(task, metric=args.metric,
                                              model_id=args.model_id, alias=args.alias)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"registered {model_id} as models:/{task}/{version} "
              f"(models:/{task}@{args.alias})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
