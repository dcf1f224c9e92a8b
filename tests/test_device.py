"""ftlib.device: choosing the device, moving nested batches, mixed precision."""

from collections import OrderedDict, defaultdict, namedtuple

import pytest
import torch

from ftlib.device import amp_dtype, autocast, best_device, grad_scaler, to_device

Pair = namedtuple("Pair", ["image", "label"])


def test_best_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("FTLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert best_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert best_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert best_device() == torch.device("cpu")


def test_best_device_honours_preference_and_environment(monkeypatch):
    monkeypatch.setenv("FTLIB_DEVICE", "cpu")
    assert best_device() == torch.device("cpu")
    monkeypatch.delenv("FTLIB_DEVICE")
    assert best_device(torch.device("cpu")) == torch.device("cpu")


def test_invalid_device_name_raises_value_error_naming_it(monkeypatch):
    with pytest.raises(ValueError, match="'gpu0'.*'cpu'"):
        best_device("gpu0")
    monkeypatch.setenv("FTLIB_DEVICE", "tpu-please")
    with pytest.raises(ValueError, match="'tpu-please'.*FTLIB_DEVICE"):
        best_device()


def test_unavailable_device_raises_value_error():
    with pytest.raises(ValueError, match="'cuda:99' .*not available"):
        best_device("cuda:99")


def test_to_device_keeps_nested_containers_and_passes_non_tensors_through():
    counts = defaultdict(int, {"n": torch.ones(1)})
    batch = {
        "pair": Pair(torch.zeros(2, 3), torch.tensor([1, 0])),
        "ordered": OrderedDict(x=torch.ones(2)),
        "counts": counts,
        "list": [torch.ones(1), "name.png", 7],
        "tuple": (torch.ones(1), None),
    }
    moved = to_device(batch, "meta")  # a device other than the CPU, available everywhere
    assert isinstance(moved["pair"], Pair)
    assert moved["pair"].image.device.type == "meta" and moved["pair"].label.dtype == torch.long
    assert type(moved["ordered"]) is OrderedDict and moved["ordered"]["x"].is_meta
    assert type(moved["counts"]) is defaultdict and moved["counts"]["missing"] == 0
    assert moved["list"][0].is_meta and moved["list"][1:] == ["name.png", 7]
    assert isinstance(moved["tuple"], tuple) and moved["tuple"][1] is None
    assert batch["pair"].image.device.type == "cpu", "the input batch must not change"


def test_to_device_on_the_same_device_keeps_values():
    x = torch.arange(6.0)
    assert torch.equal(to_device([x], "cpu")[0], x)


def test_mixed_precision_is_off_on_cpu():
    assert amp_dtype("cpu") is None
    a = torch.randn(4, 4)
    with autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert (a @ a).dtype == torch.float32


def test_amp_dtype_on_cuda_is_bf16_when_supported_else_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert amp_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert amp_dtype("cuda") == torch.float16


def test_grad_scaler_is_disabled_on_cpu_and_passes_the_loss_through():
    scaler = grad_scaler("cpu")
    assert not scaler.is_enabled()
    loss = torch.tensor(2.5)
    assert scaler.scale(loss) is loss


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_autocast_and_scaler_match_the_gpu():
    dtype = amp_dtype("cuda")
    a = torch.randn(8, 8, device="cuda")
    with autocast("cuda"):
        assert (a @ a).dtype == dtype
    assert grad_scaler("cuda").is_enabled() == (dtype == torch.float16)
    assert to_device(torch.ones(2), "cuda").is_cuda
