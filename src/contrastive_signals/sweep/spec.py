"""The sweep file: named searches over a pipeline's parameters (``conf/*/parameters_sweep.yml``,
top-level key ``sweep``), parsed into typed, frozen blocks.

Structural problems (an empty range, a log scale through zero, an unknown direction, an
objective that names a test-split figure) fail here, naming ``sweep.<name>.<field>``; what
needs the project (parameter paths, pipelines, known figures) is checked by
:mod:`contrastive_signals.sweep.checks`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.sweep.figures import leakage_problem

DEFAULT_STORAGE = "sqlite:///data/10_sweeps/optuna.db"
Scalar = bool | int | float | str


@dataclass(frozen=True)
class ParameterSpace:
    """One swept parameter: a number range (``low``..``high``, ``log`` scale, ``step``) or a list
    of ``choices`` (any YAML values, lists included: ``crop_scale: [[0.5, 1.0], [0.7, 1.0]]``).
    ``integer: true`` draws integers (default: integers when both ends are integers)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool | None = None
    choices: list[Any] | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            if not self.choices:
                raise ValueError("choices is empty: nothing to search")
            return
        if self.low is None or self.high is None:
            raise ValueError("needs low and high (a range) or choices")
        if not self.low < self.high:
            raise ValueError(f"empty range: low ({self.low}) must be < high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("log scale and step cannot be combined (Optuna)")
        if self.step is not None and not self.step > 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        if self.is_int and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"an integer range needs integer ends, got {self.low}..{self.high}")

    @property
    def is_int(self) -> bool:
        if self.integer is not None:
            return self.integer
        return isinstance(self.low, int) and isinstance(self.high, int)

    def encoded_choices(self) -> list[Scalar]:
        """The choices as Optuna can store them (scalars; lists as their JSON text)."""
        return [choice if isinstance(choice, (bool, int, float, str)) or choice is None
                else json.dumps(choice) for choice in self.choices or []]

    def decode(self, value: Any) -> Any:
        """The parameter value of an Optuna value (a JSON-encoded choice back to its list)."""
        if self.choices is not None and isinstance(value, str):
            for choice, encoded in zip(self.choices, self.encoded_choices(), strict=True):
                if encoded == value:
                    return choice
        return value

    def distribution(self):
        """This space as an Optuna distribution (``study.ask`` samples from it)."""
        import optuna.distributions as dist

        if self.choices is not None:
            return dist.CategoricalDistribution(self.encoded_choices())
        if self.is_int:
            return dist.IntDistribution(int(self.low), int(self.high), log=self.log,
                                        step=int(self.step or 1))
        return dist.FloatDistribution(float(self.low), float(self.high), log=self.log,
                                      step=self.step)

    def extremes(self) -> list[Any]:
        """The values the project's parameter checks are tried on before any trial: both ends
        of a range, every choice."""
        if self.choices is not None:
            return list(self.choices)
        cast = int if self.is_int else float
        return [cast(self.low), cast(self.high)]


@dataclass(frozen=True)
class Objective:
    """The figure the search optimises, by its stable name (a validation figure: its last
    part starts with ``val_``). A per-epoch history figure (``simclr.val_knn_acc``) counts by
    its ``last`` epoch or its ``best`` one (what a fit that keeps its best weights returns)."""

    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    reduce: Literal["last", "best"] = "last"

    def __post_init__(self) -> None:
        problem = leakage_problem(self.metric)
        if problem is not None:
            raise ValueError(problem)


@dataclass(frozen=True)
class Pruning:
    """Stops hopeless trials early: the training loop reports ``metric`` (a per-epoch
    validation figure, ``<fit name>.<validation key>``) after every epoch and Optuna's
    ``pruner`` decides (``median``: worse than the median of earlier trials at that epoch,
    after ``startup_trials`` trials and ``warmup_epochs`` epochs; ``threshold``: below
    ``lower`` or above ``upper``; ``none``)."""

    metric: str | None = None
    pruner: Literal["median", "threshold", "none"] = "median"
    startup_trials: int = 3
    warmup_epochs: int = 0
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.pruner != "none" and self.metric is None:
            raise ValueError(f"pruner '{self.pruner}' needs a metric (or pruner: none)")
        if self.metric is not None:
            problem = leakage_problem(self.metric)
            if problem is not None:
                raise ValueError(problem)
        if self.pruner == "threshold" and self.lower is None and self.upper is None:
            raise ValueError("a threshold pruner needs lower and/or upper")
        if self.startup_trials < 0 or self.warmup_epochs < 0:
            raise ValueError("startup_trials and warmup_epochs must be >= 0")

    def build(self):
        """The Optuna pruner."""
        import optuna

        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials,
                                               n_warmup_steps=self.warmup_epochs)
        if self.pruner == "threshold":
            return optuna.pruners.ThresholdPruner(lower=self.lower, upper=self.upper,
                                                  n_warmup_steps=self.warmup_epochs)
        return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class FinalReport:
    """After the search: the best trial's and the default configuration's ``metrics`` (test
    figures, seen only now) on each of ``seeds``, every parameter of ``seed_parameters`` set to
    the seed; means and spreads side by side."""

    metrics: list[str] = field(default_factory=list)
    seed_parameters: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("metrics is empty: name the test figures to report")
        if not self.seeds:
            raise ValueError("seeds is empty")


@dataclass(frozen=True)
class SweepSpec:
    """One named sweep of ``parameters_sweep.yml``."""

    name: str
    pipeline: str
    parameters: dict[str, ParameterSpace]
    objective: Objective
    to_nodes: list[str] = field(default_factory=list)
    pruning: Pruning = field(default_factory=lambda: Pruning(pruner="none"))
    n_trials: int = 20
    timeout_minutes: float | None = None
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    sampler_seed: int = 0
    startup_trials: int = 5
    fixed: dict[str, Any] = field(default_factory=dict)
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    report: FinalReport | None = None
    # processes ``run`` starts on this machine (itself included), each with cores // processes
    # threads; they share the study like processes started by hand, and run the report's runs
    processes: int = 1

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError(f"processes must be >= 1, got {self.processes}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.timeout_minutes is not None and not self.timeout_minutes > 0:
            raise ValueError(f"timeout_minutes must be > 0 or null, got {self.timeout_minutes}")
        if not self.parameters:
            raise ValueError("parameters is empty: nothing to search")
        if self.startup_trials < 0:
            raise ValueError(f"startup_trials must be >= 0, got {self.startup_trials}")

    @property
    def study(self) -> str:
        return self.study_name or self.name


def parse_sweep(name: str, values: dict[str, Any] | None) -> SweepSpec:
    """``sweep.<name>`` as a :class:`SweepSpec`; a :class:`ParameterError` names the entry."""
    path = f"sweep.{name}"
    values = dict(values or {})
    raw_space = values.pop("parameters", None)
    if not isinstance(raw_space, dict):
        raise ParameterError(f"{path}.parameters must map parameter paths to ranges or "
                             f"choices, got {raw_space!r}")
    space = {key: from_params(ParameterSpace, entry if isinstance(entry, dict) else
                              {"choices": entry}, path=f"{path}.parameters.{key}")
             for key, entry in raw_space.items()}
    return from_params(SweepSpec, {"name": name, **values, "parameters": space}, path=path)


def parse_sweeps(values: dict[str, Any] | None) -> dict[str, SweepSpec]:
    """Every named sweep of the ``sweep`` block."""
    return {name: parse_sweep(name, entry) for name, entry in (values or {}).items()}


def check_sweeps(values: Any, key: str) -> dict[str, SweepSpec]:
    """The structural check of the ``sweep`` block (``parameter_checks.CHECKS``)."""
    if not isinstance(values, dict):
        raise ParameterError(f"{key} must map sweep names to sweeps, got {values!r}")
    return parse_sweeps(values)
