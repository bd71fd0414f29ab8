"""``timeseries``: UCR/UEA sets (aeon's bundled ones and data/01_raw/ucr) -> contrastive
pretraining per set and method -> SVM protocol, linear probe, raw 1-NN -> table and t-SNE;
beside them aeon's MiniRocket, MultiRocket and 1-NN DTW on the raw series; MNIST-1D generated
-> SimCLR + linear probe, supervised CNN, chosen UCR methods (TS2Vec, SoftCLT) under the SVM
protocol, the same baselines; one flat metrics report."""

from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.common import merged_report

from . import nodes

PARAMETERS = {"params:timeseries.ucr", "params:timeseries.mnist1d"}
# The flat reports merged into `timeseries_metrics`; other pipelines' flat reports (e.g.
# `ts_sleep_metrics`) join through `create_pipeline(extra_reports=[...])`.
REPORTS = ["ucr_metrics", "ucr_baseline_metrics", "ucr_pretrain_seconds",
           "mnist1d_simclr_metrics", "mnist1d_supervised_metrics", "mnist1d_baseline_metrics",
           "mnist1d_svm_metrics"]


def create_pipeline(extra_reports: tuple[str, ...] | list[str] = (), **kwargs) -> Pipeline:
    """The pipeline; ``extra_reports`` names catalog datasets (not namespaced) holding further
    flat ``{metric: value}`` dicts to merge into ``timeseries_metrics``."""
    extra = list(extra_reports)
    template = Pipeline([
        node(nodes.load_ucr_datasets, ["ucr_archive", "params:timeseries.ucr"], "ucr_data",
             name="load_ucr_datasets"),
        node(nodes.pretrain_ts_encoders, ["ucr_data", "params:timeseries.ucr"],
             ["ucr_encoders", "ucr_pretrain_seconds", "ucr_history_metrics"],
             name="pretrain_ucr_encoders"),
        node(nodes.evaluate_ts_encoders, ["ucr_data", "ucr_encoders", "params:timeseries.ucr"],
             ["ucr_metrics", "ucr_embeddings"], name="evaluate_ucr_encoders"),
        node(nodes.evaluate_ts_baselines, ["ucr_data", "params:timeseries.ucr"],
             "ucr_baseline_metrics", name="evaluate_ucr_baselines"),
        node(nodes.plot_ts_embeddings, ["ucr_embeddings", "params:timeseries.ucr"], "ucr_tsne_plot",
             name="plot_ucr_tsne"),
        node(nodes.ts_results_table,
             ["ucr_metrics", "ucr_baseline_metrics", "ucr_pretrain_seconds",
              "params:timeseries.ucr"],
             "ucr_results_table", name="ucr_results_table"),
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
        node(merged_report, REPORTS + extra, ["metrics", "metrics_mlflow"],
             name="merge_metric_reports"),
    ])
    return pipeline(template, namespace="timeseries", parameters=PARAMETERS,
                    inputs=set(extra) or None,
                    outputs={"metrics": "timeseries_metrics",
                             "metrics_mlflow": "timeseries_metrics_mlflow"},
                    tags="timeseries")
