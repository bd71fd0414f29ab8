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


def test_a_failed_mlflow_upload_names_the_saved_model(tmp_path, monkeypatch):
    import pytest
    import torch
    from kedro.io import DataCatalog
    from kedro.io.core import Version

    from contrastive_signals.hooks.artifacts import ArtifactsNotLoggedError, ModelArtifactsHook
    from contrastive_signals.io.torch_dataset import TorchDataset

    dataset = TorchDataset(filepath=str(tmp_path / "m.pt"), version=Version(None, "v1"))
    catalog = DataCatalog(datasets={"simclr.encoder": dataset})
    catalog.save("simclr.encoder", {"w": torch.ones(1)})
    hook = ModelArtifactsHook()
    hook.after_catalog_created(catalog)

    def fail(*args, **kwargs):
        raise OSError("artifact store is read-only")

    monkeypatch.setattr("mlflow.active_run", lambda: object())
    monkeypatch.setattr("mlflow.log_artifact", fail)
    hook.after_dataset_saved("simclr.encoder")  # the node's other outputs still get saved
    with pytest.raises(ArtifactsNotLoggedError) as error:
        hook.before_node_run()  # the run stops before the next node
    saved = tmp_path / "m.pt" / "v1" / "m.pt"
    assert f"Saved locally, not in MLflow: model simclr.encoder at {saved}" in str(error.value)
    assert "artifact store is read-only" in str(error.value)
    assert torch.load(saved, weights_only=True)["w"].item() == 1.0
