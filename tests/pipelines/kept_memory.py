"""A catalog dataset for pipeline tests."""

from kedro.io import MemoryDataset


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so tests can read intermediate outputs."""

    def _release(self) -> None:
        pass
