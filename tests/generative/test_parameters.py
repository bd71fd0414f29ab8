"""The generative parameter blocks are checked up front (pipelines/parameter_checks.py) and
the conf/base blocks parse."""

from pathlib import Path

import pytest
import yaml

from contrastive_signals.config import ParameterError
from contrastive_signals.pipelines.parameter_checks import check_for

BASE = yaml.safe_load((Path(__file__).parents[2] / "conf/base/parameters_generative.yml")
                      .read_text())["generative"]


@pytest.mark.parametrize("block", ["ddpm", "gan", "evaluation"])
def test_conf_base_blocks_parse(block):
    check_for(f"generative.{block}")(BASE[block], f"generative.{block}")


@pytest.mark.parametrize(("block", "change", "message"), [
    ("gan", {"model": {"loss": "wasserstein"}}, "loss"),
    ("ddpm", {"model": {"schedule": "quadratic"}}, "schedule"),
    ("ddpm", {"sampling": {"sampler": "euler"}}, "sampler"),
    ("evaluation", {"seeds": []}, "seeds"),
    ("ddpm", {"ema_decay": 1.5}, "ema_decay"),
    ("gan", {"ema_decay": 0.0}, "ema_decay"),
    ("gan", {"model": {"betas": [0.5, 1.2]}}, "betas"),
    ("gan", {"model": {"d_lr_scale": -1.0}}, "d_lr_scale"),
])
def test_bad_values_name_their_path(block, change, message):
    values = {**BASE[block], **{k: {**BASE[block].get(k, {}), **v} if isinstance(v, dict) else v
                                for k, v in change.items()}}
    with pytest.raises((ParameterError, ValueError), match=message) as error:
        check_for(f"generative.{block}")(values, f"generative.{block}")
    assert "generative." in str(error.value)
