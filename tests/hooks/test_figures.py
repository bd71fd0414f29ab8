import logging

from contrastive_signals.hooks.figures import NodeFiguresHook, _figures


class FakeNode:
    name = "evaluation.simclr.evaluate"


def test_figures_from_metric_dicts_results_and_histories():
    assert _figures({"a": 1, "b": 0.5, "flag": True, "text": "x"}) == {"a": 1.0, "b": 0.5}
    assert _figures({"metrics": {"acc": 0.9}, "labels": [1, 2]}) == {"acc": 0.9}
    assert _figures({"train_loss": [3.0, 2.0, 1.5]}) == {"train_loss[last]": 1.5}
    assert _figures([1, 2]) == {}


def test_node_figures_logged_in_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="contrastive_signals.hooks.figures"):
        NodeFiguresHook().after_node_run(FakeNode(), {"evaluation.simclr.probe_scores": {
            "metrics": {"knn.acc": 0.98, "map": 0.91}}, "x_mlflow": {"ignored": 1.0}})
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["evaluation.simclr.evaluate: knn.acc=0.98 map=0.91"]
