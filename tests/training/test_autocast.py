"""The CPU bf16 forward policy: the identity when off, bf16 channels-last calls when on."""

import pytest
import torch
from torch import nn

from contrastive_signals.training.autocast import CpuBf16Forward


def _conv():
    torch.manual_seed(0)
    return nn.Conv2d(1, 4, 3, padding=1)


def test_off_is_the_plain_call():
    policy = CpuBf16Forward(enabled=False, device="cpu")
    model = _conv()
    assert policy.prepare(model) is model
    assert model.weight.is_contiguous()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(policy(model, x), model(x), rtol=0, atol=0)
    assert policy(lambda a, b: a + b, 1, 2) == 3  # extra arguments pass through


def test_on_runs_bf16_with_channels_last_images_and_leaves_other_inputs_alone():
    policy = CpuBf16Forward(enabled=True, device="cpu")
    model = policy.prepare(_conv())
    assert model.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 8, 8)
    out = policy(model, x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), model(x), rtol=0.05, atol=0.05)
    codes = {"a": torch.rand(2, 3)}
    assert policy(lambda d: d["a"] @ torch.ones(3, 1), codes).dtype == torch.bfloat16


def test_bad_device_is_rejected():
    with pytest.raises(RuntimeError):
        CpuBf16Forward(enabled=True, device="no-such-device")


def test_auto_follows_the_cpus_bf16_kernels(monkeypatch):
    from contrastive_signals.training import autocast

    for native in (True, False):
        monkeypatch.setattr(autocast, "cpu_has_fast_bf16", lambda native=native: native)
        assert autocast.resolve_cpu_bf16("auto") is native
        assert CpuBf16Forward(enabled="auto", device="cpu").active is native
    assert autocast.resolve_cpu_bf16(True) is True and autocast.resolve_cpu_bf16(False) is False
    assert isinstance(autocast.cpu_has_fast_bf16(), bool)


@pytest.mark.parametrize("setting", ["yes", 1, 0, None, "AUTO"])
def test_other_bf16_settings_are_rejected(setting):
    from contrastive_signals.training.autocast import resolve_cpu_bf16

    with pytest.raises(ValueError, match="cpu_bf16 must be true, false or auto"):
        resolve_cpu_bf16(setting)


def test_channels_last_alone_keeps_float32_and_the_result():
    policy = CpuBf16Forward(enabled=False, device="cpu", channels_last=True)
    assert policy.channels_last and not policy.active
    reference = _conv()
    model = policy.prepare(_conv())
    assert model.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 8, 8)
    out = policy(model, x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference(x), rtol=1e-5, atol=1e-6)
    codes = {"a": torch.rand(2, 3)}
    assert policy(lambda d: d["a"] @ torch.ones(3, 1), codes).dtype == torch.float32
