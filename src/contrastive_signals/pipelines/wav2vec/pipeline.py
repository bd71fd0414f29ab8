"""wav2vec pretraining on sleep EEG and its label-efficiency test, under the namespace
``wav2vec``: its own synthetic Sleep-EDF folder (more, shorter nights than the `sleep`
pipeline, so 10 % of the training recordings is more than one) -> epochs -> subject split
(the `sleep` pipeline's nodes) -> wav2vec pretraining on the training nights -> the sleep
stager fine-tuned from the wav2vec encoder and from scratch on 10 % / 100 % of the labelled
nights, 5 seeds -> report and plot."""

from kedro.pipeline import Pipeline, node, pipeline

from contrastive_signals.pipelines.sleep.nodes import (
    build_sleep_epochs,
    generate_synthetic_sleep_edf,
    split_sleep_subjects,
)
from contrastive_signals.pipelines.wiring import bind

from .nodes import (
    plot_label_efficiency,
    pretrain_sleep_wav2vec,
    run_label_efficiency,
    summarise_label_efficiency,
)

PARAMETERS = {"params:wav2vec.synthetic", "params:wav2vec.ingestion",
              "params:wav2vec.pretraining", "params:wav2vec.label_efficiency"}


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline([
        node(bind(generate_synthetic_sleep_edf, path="wav2vec.synthetic"),
             "params:wav2vec.synthetic", "synthetic_edf", name="generate_synthetic_recordings"),
        node(bind(build_sleep_epochs, path="wav2vec.ingestion"),
             ["edf_recordings", "synthetic_edf", "params:wav2vec.ingestion"], "epochs",
             name="build_epochs"),
        node(bind(split_sleep_subjects, path="wav2vec.ingestion"),
             ["epochs", "params:wav2vec.ingestion"], "split", name="split_subjects"),
        node(pretrain_sleep_wav2vec, ["epochs", "split", "params:wav2vec.pretraining",
                                      "params:wav2vec.label_efficiency"],
             ["encoder", "history", "history_metrics"], name="pretrain"),
        node(run_label_efficiency, ["epochs", "split", "encoder", "params:wav2vec.label_efficiency"],
             "label_efficiency", name="fine_tune_label_efficiency"),
        node(summarise_label_efficiency, "label_efficiency",
             ["ts_sleep_metrics", "metrics", "metrics_mlflow"], name="summarise"),
        node(plot_label_efficiency, "label_efficiency", "label_efficiency_plot",
             name="plot_label_efficiency"),
    ])
    return pipeline(template, namespace="wav2vec", parameters=PARAMETERS,
                    outputs={"ts_sleep_metrics": "ts_sleep_metrics", "metrics": "wav2vec_metrics",
                             "metrics_mlflow": "wav2vec_metrics_mlflow"},
                    tags="wav2vec")
