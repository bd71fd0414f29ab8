from dataclasses import dataclass, field

import pytest

from contrastive_signals.config import ParameterError, from_params
from contrastive_signals.training.fit import FitConfig


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1

    def __post_init__(self):
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = ()


def test_builds_nested_and_converts_lists():
    built = from_params(Outer, {"name": "x", "inner": {"rate": 0.5}, "sizes": [1, 2]}, path="p")
    assert built == Outer(name="x", inner=Inner(rate=0.5), sizes=(1, 2))


def test_unknown_key_names_path_and_valid_keys():
    with pytest.raises(ParameterError, match=r"p\.inner: unknown parameter\(s\) \['rat'\]") as error:
        from_params(Outer, {"name": "x", "inner": {"rat": 1}}, path="p")
    assert "rate" in str(error.value)


def test_missing_and_invalid_values():
    with pytest.raises(ParameterError, match=r"missing required parameter\(s\) \['name'\]"):
        from_params(Outer, {}, path="p")
    with pytest.raises(ParameterError, match=r"p\.inner: rate must be > 0"):
        from_params(Outer, {"name": "x", "inner": {"rate": -1}}, path="p")


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"epochs": 0, "learning_rate": 0.1}, "epochs"),
        ({"epochs": 3, "learning_rate": 0}, "learning_rate"),
        ({"epochs": 3, "learning_rate": 0.1, "monitor_mode": "up"}, "monitor_mode"),
        ({"epochs": 3, "learning_rate": 0.1, "warmup_epochs": 3}, "warmup_epochs"),
        ({"epochs": 3, "learning_rate": 0.1, "grad_clip_norm": -1}, "grad_clip_norm"),
    ],
)
def test_fit_config_rejects_bad_values(values, match):
    with pytest.raises(ParameterError, match=match):
        from_params(FitConfig, values, path="fit")


def test_range_checks_name_the_first_bad_field():
    from dataclasses import dataclass

    from contrastive_signals.config import require_at_least, require_positive, require_probability

    @dataclass
    class Settings:
        size: int = 3
        rate: float = 0.5
        p: float = 0.2

    require_at_least(Settings(), ("size",), 1)
    require_positive(Settings(), ("rate", "size"))
    require_probability(Settings(), ("p", "rate"))
    with pytest.raises(ValueError, match=r"^size must be >= 4, got 3$"):
        require_at_least(Settings(rate=5.0), ("rate", "size"), 4)
    with pytest.raises(ValueError, match=r"^rate must be > 0, got 0.0$"):
        require_positive(Settings(rate=0.0), ("size", "rate"))
    with pytest.raises(ValueError, match=r"^p must lie in \[0, 1\], got 1.5$"):
        require_probability(Settings(p=1.5), ("rate", "p"))
    with pytest.raises(ValueError, match="rate must be > 0"):
        require_positive(Settings(rate=float("nan")), ("rate",))
