"""One figure over seeds (or repeats): its mean and standard deviation, the way every report of
the project states a spread."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def mean_and_std(values: Iterable[float], *, ddof: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of ``values`` (``ddof`` 0: population, the pipelines'
    ``*.std``; 1: sample, the multi-seed scripts'); the std is 0 for a single value.

    Raises:
        ValueError: when ``values`` is empty (a spread of nothing is a bug upstream).
    """
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError("no values to summarise")
    return float(array.mean()), float(array.std(ddof=ddof)) if array.size > 1 else 0.0


def seed_spread(values: Iterable[float], *, ddof: int = 0) -> dict[str, Any]:
    """``{"mean", "std", "values"}`` of one figure over seeds (see :func:`mean_and_std`)."""
    values = [float(value) for value in values]
    mean, std = mean_and_std(values, ddof=ddof)
    return {"mean": mean, "std": std, "values": values}
