"""One top-level namespace (one Airflow task with `--group-by namespace`) per UCR/UEA set of
the `timeseries` pipelines, MNIST-1D in its own; what crosses from one task to another is a
file in the catalog; the pipeline registry follows the run's parameters; a pipeline built for
other sets than the run's is refused before the first node."""

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset

from contrastive_signals.config import ParameterError
from contrastive_signals.hooks.timeseries_sets import TimeseriesSetsHook, set_problem
from contrastive_signals.pipelines.timeseries import create_pipeline, sets
from contrastive_signals.pipelines.timeseries.nodes import gather_by_set
from contrastive_signals.settings import CONFIG_LOADER_ARGS

ROOT = Path(__file__).resolve().parents[2]
SETS = ["GunPoint", "Italy-Power"]


@pytest.fixture
def recorded_sets():
    """Leaves the module's recorded sets as they were."""
    before = sets._recorded, sets._built_for
    yield
    sets._recorded, sets._built_for = before


def _catalog(env: str = "test") -> DataCatalog:
    loader = OmegaConfigLoader(str(ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return DataCatalog.from_config(loader["catalog"])


def test_each_set_is_its_own_group_and_the_gather_waits_for_all():
    groups = {group.name: group for group in create_pipeline(
        ucr_sets=SETS, extra_reports=["ts_sleep_metrics"]).group_nodes_by("namespace")}
    assert set(groups) == {"ucr_GunPoint", "ucr_Italy_Power", "mnist1d", "timeseries"}
    assert all(groups[name].dependencies == [] for name in ("ucr_GunPoint", "ucr_Italy_Power",
                                                            "mnist1d"))
    assert set(groups["timeseries"].dependencies) == {"ucr_GunPoint", "ucr_Italy_Power",
                                                      "mnist1d"}
    assert {"ucr_GunPoint.pretrain_ucr_encoders", "ucr_GunPoint.evaluate_ucr_encoders",
            "ucr_GunPoint.evaluate_ucr_baselines"} <= set(groups["ucr_GunPoint"].nodes)


def test_every_dataset_between_groups_is_a_file_in_the_catalog():
    pipe = create_pipeline(ucr_sets=SETS)
    owner = {name: node.namespace.split(".")[0] for node in pipe.nodes for name in node.outputs}
    crossing = {name for node in pipe.nodes for name in node.inputs
                if name in owner and owner[name] != node.namespace.split(".")[0]}
    assert {"ucr_GunPoint.encoders", "ucr_Italy_Power.metrics",
            "timeseries.mnist1d_simclr_metrics"} <= crossing
    catalog = _catalog()
    for name in crossing:
        dataset = catalog.get(name)
        assert dataset is not None and not isinstance(dataset, MemoryDataset), name
    assert catalog.get("ucr_GunPoint.encoders")._version is not None  # versioned, as the model


def test_the_gather_keeps_the_lists_order_and_the_datasets_of_one_run():
    gather = next(n for n in create_pipeline(ucr_sets=SETS).nodes
                  if n.name == "timeseries.gather_ucr_sets")
    assert gather.inputs[0].startswith("ucr_GunPoint.") and \
        gather.inputs[-1].startswith("ucr_Italy_Power.")
    assert set(gather.outputs) == {f"timeseries.ucr_{f}" for f in (
        "data", "encoders", "metrics", "embeddings", "pretrain_seconds", "baseline_metrics")}
    data, metrics = gather_by_set({"B": 2}, {"m.B": 0.5}, {"A": 1}, {"m.A": 0.25}, fields=2)
    assert list(data) == ["B", "A"] and metrics == {"m.B": 0.5, "m.A": 0.25}
    with pytest.raises(ValueError, match="whole sets"):
        gather_by_set({}, {}, {}, fields=2)


def test_set_names_become_distinct_identifiers():
    assert sets.set_namespaces(["Gun Point", "ItalyPowerDemand"]) == {
        "Gun Point": "ucr_Gun_Point", "ItalyPowerDemand": "ucr_ItalyPowerDemand"}
    with pytest.raises(ValueError, match="same namespace"):
        sets.set_namespaces(["Gun-Point", "Gun_Point"])
    assert sets.datasets_of({"timeseries": {"ucr": {"datasets": "GunPoint"}}}) == ["GunPoint"]


def test_the_registry_follows_the_recorded_parameters(recorded_sets):
    from contrastive_signals.pipeline_registry import register_pipelines

    sets.record({"timeseries": {"ucr": {"datasets": ["GunPoint"]}}})
    namespaces = {n.namespace.split(".")[0] for n in register_pipelines()["timeseries"].nodes}
    assert {"ucr_GunPoint", "mnist1d", "timeseries"} <= namespaces
    assert not any(ns.startswith("ucr_") and ns != "ucr_GunPoint" for ns in namespaces)
    # a context with other sets after the registry was built asks for a new registry
    assert sets.record({"timeseries": {"ucr": {"datasets": ["ItalyPowerDemand"]}}})
    sets.registered_sets()
    assert not sets.record({"timeseries": {"ucr": {"datasets": ["ItalyPowerDemand"]}}})


def test_without_a_context_the_projects_configuration_gives_the_sets(recorded_sets, monkeypatch):
    sets._recorded = None
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("KEDRO_ENV", "test")
    assert sets.registered_sets() == ["ItalyPowerDemand"]


def test_a_pipeline_built_for_other_sets_is_refused_before_the_first_node():
    pipe = create_pipeline(ucr_sets=["GunPoint"])
    assert set_problem(pipe, ["GunPoint"]) is None
    assert set_problem(pipe.only_nodes_with_namespaces(["ucr_GunPoint"]), ["GunPoint", "X"]) is None
    gather_task = pipe.only_nodes_with_namespaces(["timeseries"])  # the Airflow task
    assert set_problem(gather_task, ["GunPoint"]) is None
    assert "['ucr_GunPoint']" in set_problem(gather_task, ["GunPoint", "ItalyPowerDemand"])
    problem = set_problem(pipe, ["ItalyPowerDemand"])
    assert "['ucr_GunPoint']" in problem and "['ucr_ItalyPowerDemand']" in problem
    catalog = DataCatalog(datasets={
        "params:timeseries.ucr": MemoryDataset({"datasets": ["ItalyPowerDemand"]})})
    with pytest.raises(ParameterError, match="built for the UCR/UEA sets"):
        TimeseriesSetsHook().before_pipeline_run({}, pipe, catalog)
