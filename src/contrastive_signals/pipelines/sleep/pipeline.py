"""Sleep staging from EDF+, all under the namespace ``sleep``: synthetic Sleep-EDF files
(skipped when real ones are present) -> epochs -> subject split -> CNN + BiLSTM with CTC and
per-epoch heads -> test metrics and plots."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import (
    build_sleep_epochs,
    evaluate_sleep_predictions,
    generate_synthetic_sleep_edf,
    plot_sleep_confusion,
    plot_sleep_hypnogram,
    predict_sleep_stages,
    split_sleep_subjects,
    train_sleep_model,
)

PARAMETERS = {"params:sleep.synthetic", "params:sleep.ingestion", "params:sleep.training",
              "params:sleep.evaluation"}


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline([
        node(generate_synthetic_sleep_edf, "params:sleep.synthetic", "synthetic_edf",
             name="generate_synthetic_recordings"),
        # The reader comes first among the inputs: with `download: true` it fetches the real
        # files before the folder listing is taken.
        node(build_sleep_epochs, ["edf_recordings", "synthetic_edf", "params:sleep.ingestion"],
             "epochs", name="build_epochs"),
        node(split_sleep_subjects, ["epochs", "params:sleep.ingestion"], "split",
             name="split_subjects"),
        node(train_sleep_model, ["epochs", "split", "params:sleep.training"],
             ["model", "history", "history_metrics"], name="train_stager"),
        node(predict_sleep_stages, ["epochs", "split", "model", "params:sleep.evaluation"],
             "test_predictions", name="predict_test_nights"),
        node(evaluate_sleep_predictions, "test_predictions", ["metrics", "metrics_mlflow"],
             name="evaluate"),
        node(plot_sleep_hypnogram, ["test_predictions", "params:sleep.evaluation"],
             "hypnogram_plot", name="plot_hypnogram"),
        node(plot_sleep_confusion, "test_predictions", "confusion_plot", name="plot_confusion"),
    ])
    return pipeline(template, namespace="sleep", parameters=PARAMETERS,
                    outputs={"metrics": "sleep_metrics", "metrics_mlflow": "sleep_metrics_mlflow"},
                    tags="sleep")
