"""``timeseries``: UCR/UEA sets (aeon's bundled ones and data/01_raw/ucr) -> contrastive
pretraining per set and method -> SVM protocol, linear probe, raw 1-NN -> table and t-SNE;
beside them aeon's MiniRocket, MultiRocket and 1-NN DTW on the raw series; MNIST-1D generated
-> SimCLR + linear probe, supervised CNN, chosen UCR methods (TS2Vec, SoftCLT) under the SVM
protocol, the same baselines; one flat metrics report.

Each UCR/UEA set is its own top-level namespace ``ucr_<Set>`` (load -> pretrain every method
-> evaluate -> aeon baselines), so ``kedro airflow create --group-by namespace`` makes it its
own task; ``timeseries.gather_ucr_sets`` joins the sets' results, in the list's order, into
the datasets the reports, plots and inference pipeline read (``timeseries.ucr_*``)."""

from collections.abc import Callable
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.common import merged_report

from . import nodes
from .sets import registered_sets, set_namespaces

# The flat reports merged into `timeseries_metrics`; other pipelines' flat reports (e.g.
# `ts_sleep_metrics`) join through `create_pipeline(extra_reports=[...])`.
REPORTS = ["ucr_metrics", "ucr_baseline_metrics", "ucr_pretrain_seconds",
           "mnist1d_simclr_metrics", "mnist1d_supervised_metrics", "mnist1d_baseline_metrics",
           "mnist1d_svm_metrics"]
MNIST1D_DATASETS = ("mnist1d_data", "mnist1d_simclr_encoder", "mnist1d_simclr_history_metrics",
                    *(name for name in REPORTS if name.startswith("mnist1d_")))
# What each set's namespace hands to `timeseries.gather_ucr_sets` (files in the catalog:
# `"ucr_{set}.<field>"`), gathered into `timeseries.ucr_<field>`.
GATHERED = ("data", "encoders", "metrics", "embeddings", "pretrain_seconds", "baseline_metrics")


def _bound(func: Callable, **kwargs) -> Callable:
    """``func`` with ``kwargs`` bound, keeping its name and annotations (Kedro reads them)."""
    return update_wrapper(partial(func, **kwargs), func)


def create_set_pipeline(name: str, namespace: str) -> Pipeline:
    """One UCR/UEA set, top-level namespace ``namespace``: ``{namespace}.<field>`` of
    :data:`GATHERED` and its MLflow loss histories (``{namespace}.history_metrics``)."""
    template = Pipeline([
        node(_bound(nodes.load_ucr_set, name=name), ["ucr_archive", "params:timeseries.ucr"],
             "data", name="load_ucr_set"),
        node(nodes.pretrain_ts_encoders, ["data", "params:timeseries.ucr"],
             ["encoders", "pretrain_seconds", "history_metrics"], name="pretrain_ucr_encoders"),
        node(nodes.evaluate_ts_encoders, ["data", "encoders", "params:timeseries.ucr"],
             ["metrics", "embeddings"], name="evaluate_ucr_encoders"),
        node(nodes.evaluate_ts_baselines, ["data", "params:timeseries.ucr"],
             "baseline_metrics", name="evaluate_ucr_baselines"),
    ])
    return pipeline(template, namespace=namespace, parameters={"params:timeseries.ucr"},
                    inputs={"ucr_archive": "timeseries.ucr_archive"}, tags="timeseries")


def create_mnist1d_pipeline() -> Pipeline:
    """MNIST-1D, top-level namespace ``mnist1d`` (its own Airflow task, beside the UCR sets'),
    its datasets keeping their ``timeseries.mnist1d_*`` names (reports: JSON files)."""
    template = Pipeline([
        node(nodes.generate_mnist1d_data, "params:timeseries.mnist1d", "mnist1d_data",
             name="generate_mnist1d"),
        node(nodes.pretrain_mnist1d_simclr, ["mnist1d_data", "params:timeseries.mnist1d"],
             ["mnist1d_simclr_encoder", "mnist1d_simclr_history_metrics"],
             name="pretrain_mnist1d_simclr"),
        node(nodes.evaluate_mnist1d_simclr,
             ["mnist1d_data", "mnist1d_simclr_encoder", "params:timeseries.mnist1d"],
             "mnist1d_simclr_metrics", name="evaluate_mnist1d_simclr"),
        node(nodes.evaluate_mnist1d_svm_methods,
             ["mnist1d_data", "params:timeseries.mnist1d", "params:timeseries.ucr"],
             "mnist1d_svm_metrics", name="evaluate_mnist1d_svm_methods"),
        node(nodes.evaluate_mnist1d_baselines, ["mnist1d_data", "params:timeseries.mnist1d"],
             "mnist1d_baseline_metrics", name="evaluate_mnist1d_baselines"),
        node(nodes.train_mnist1d_supervised, ["mnist1d_data", "params:timeseries.mnist1d"],
             "mnist1d_supervised_metrics", name="train_mnist1d_supervised"),
    ])
    return pipeline(template, namespace="mnist1d", tags="timeseries",
                    parameters={"params:timeseries.mnist1d", "params:timeseries.ucr"},
                    outputs={name: f"timeseries.{name}" for name in MNIST1D_DATASETS})


def create_pipeline(extra_reports: tuple[str, ...] | list[str] = (),
                    ucr_sets: list[str] | None = None, **kwargs) -> Pipeline:
    """The pipeline for ``ucr_sets`` (default: the run's ``timeseries.ucr.datasets``, see
    :mod:`.sets`); ``extra_reports`` names catalog datasets (not namespaced) holding further
    flat ``{metric: value}`` dicts to merge into ``timeseries_metrics``."""
    extra = list(extra_reports)
    namespaces = set_namespaces(registered_sets() if ucr_sets is None else list(ucr_sets))
    per_set = sum((create_set_pipeline(name, namespace)
                   for name, namespace in namespaces.items()), Pipeline([]))
    template = Pipeline([
        node(_bound(nodes.gather_by_set, fields=len(GATHERED)),
             [f"{namespace}.{field}" for namespace in namespaces.values() for field in GATHERED],
             [f"ucr_{field}" for field in GATHERED], name="gather_ucr_sets"),
        node(nodes.plot_ts_embeddings, ["ucr_embeddings", "params:timeseries.ucr"], "ucr_tsne_plot",
             name="plot_ucr_tsne"),
        node(nodes.ts_results_table,
             ["ucr_metrics", "ucr_baseline_metrics", "ucr_pretrain_seconds",
              "params:timeseries.ucr"],
             "ucr_results_table", name="ucr_results_table"),
        node(merged_report, REPORTS + extra, ["metrics", "metrics_mlflow"],
             name="merge_metric_reports"),
    ])
    gathered = {f"{namespace}.{field}" for namespace in namespaces.values() for field in GATHERED}
    # MNIST-1D's reports arrive as `timeseries.mnist1d_*`: the namespace's own names.
    return per_set + create_mnist1d_pipeline() + pipeline(
        template, namespace="timeseries", parameters={"params:timeseries.ucr"},
        inputs=(set(extra) | gathered) or None,
        outputs={"metrics": "timeseries_metrics", "metrics_mlflow": "timeseries_metrics_mlflow"},
        tags="timeseries")
