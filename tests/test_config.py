from dataclasses import dataclass, field
from typing import Literal

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


# ---- types of YAML values (issue 14: `nope` for a bool, 2.5 for an int, `abc` for a float)

@dataclass(frozen=True)
class _Typed:
    epochs: int = 1
    learning_rate: float = 1e-3
    batch_norm: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    patience: int | None = None
    channels: tuple[int, ...] = (4, 8)
    name: str = "x"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 2.5, "fit.epochs must be an integer, got 2.5"),
    ("epochs", True, "fit.epochs must be an integer, got True"),
    ("learning_rate", "abc", "fit.learning_rate must be a number, got 'abc'"),
    ("learning_rate", float("inf"), "fit.learning_rate must be a finite number"),
    ("batch_norm", "nope", "fit.batch_norm must be true or false, got 'nope'"),
    ("device", "gpu", "fit.device must be one of ['auto', 'cpu', 'cuda'], got 'gpu'"),
    ("patience", 1.5, "fit.patience must be an integer, got 1.5"),
    ("channels", [4, "8"], "fit.channels item 1 must be an integer, got '8'"),
    ("name", 3, "fit.name must be a string, got 3"),
])
def test_values_of_the_wrong_type_name_their_full_path(field, value, message):
    with pytest.raises(ParameterError) as error:
        from_params(_Typed, {field: value}, path="fit")
    assert message in str(error.value)


def test_values_of_the_right_type_pass():
    typed = from_params(_Typed, {"epochs": 3, "learning_rate": 1, "batch_norm": False,
                                  "device": "cpu", "patience": None, "channels": [1, 2]},
                         path="fit")
    assert typed.learning_rate == 1 and typed.channels == (1, 2)
