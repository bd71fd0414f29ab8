"""``generative``: DDPM and GAN trained on ``digit_features``, judged with the digits
pipeline's ``supervised.encoder`` and ``simclr.encoder`` (which it reads from the catalog:
run the digits pipeline first, or ``--pipeline=generative_with_digits``)."""

from kedro.pipeline import Pipeline, node

from contrastive_signals.pipelines.wiring import bind

from .nodes import (
    curves_figure,
    evaluate_generators,
    generate,
    generative_report,
    sample_grid_figure,
    synthetic_gain,
    train_ddpm,
    train_gan,
    trajectory_figure,
)

ENCODERS = ["digit_features", "supervised.encoder", "simclr.encoder"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(train_ddpm, ["digit_features", "params:generative.ddpm"],
             ["generative.ddpm.model", "generative.ddpm.history",
              "generative.ddpm.history_metrics"], name="train_ddpm"),
        node(train_gan, ["digit_features", "params:generative.gan"],
             ["generative.gan.model", "generative.gan.history",
              "generative.gan.history_metrics"], name="train_gan"),
        node(generate, ["generative.ddpm.model", "generative.gan.model",
                        "params:generative.ddpm", "params:generative.evaluation"],
             ["generative.samples", "generative.ddpm_trajectory"], name="generate_samples"),
        node(evaluate_generators, [*ENCODERS, "generative.samples",
                                   "params:generative.evaluation"],
             "generative.evaluation_scores", name="evaluate_generators"),
        node(synthetic_gain, [*ENCODERS, "generative.samples", "params:generative.evaluation"],
             "generative.synthetic_scores", name="synthetic_gain"),
        node(generative_report, ["generative.evaluation_scores", "generative.synthetic_scores"],
             ["generative_metrics", "generative_metrics_mlflow"], name="generative_report"),
        node(bind(sample_grid_figure, kind="ddpm"), "generative.samples",
             "generative.ddpm.samples_plot", name="plot_ddpm_samples"),
        node(bind(sample_grid_figure, kind="gan"), "generative.samples",
             "generative.gan.samples_plot", name="plot_gan_samples"),
        node(trajectory_figure, "generative.ddpm_trajectory", "generative.trajectory_plot",
             name="plot_ddpm_trajectory"),
        node(curves_figure, ["generative.ddpm.history", "generative.gan.history"],
             "generative.curves_plot", name="plot_generative_curves"),
    ], tags="generative")
