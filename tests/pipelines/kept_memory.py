"""In-memory pipeline runs for pipeline tests (importing no pipeline registry)."""

import copy

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so tests can read intermediate outputs."""

    def _release(self) -> None:
        pass


def run_in_memory(pipeline, inputs: dict, params: dict, keep: tuple[str, ...] = ()) -> dict:
    """Run ``pipeline`` on in-memory ``inputs``; return its free outputs and the ``keep`` ones."""
    datasets = {name: MemoryDataset(copy.deepcopy(value)) for name, value in inputs.items()}
    datasets.update({name: KeptMemoryDataset() for name in keep})
    for key, value in params.items():
        datasets[f"params:{key}"] = MemoryDataset(value)
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                datasets[f"params:{key}.{sub}"] = MemoryDataset(sub_value)
    catalog = DataCatalog(datasets=datasets)
    outputs = SequentialRunner().run(pipeline, catalog)
    # Kedro returns the pipeline's free outputs (possibly as lazy datasets).
    loaded = {name: value.load() if hasattr(value, "load") else value for name, value in outputs.items()}
    return {**loaded, **{name: catalog.load(name) for name in keep}}
