"""Specifications of ftlib.data.weights: torchvision weights and datasets from local files only."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models import GoogLeNet_Weights, ResNet18_Weights

from ftlib.data import (
    DatasetNotFoundError,
    WeightsNotFoundError,
    pretrained_torchvision,
    resolve_weights,
    torchvision_dataset,
    weights_path,
)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in a temporary TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path / "hub" / "checkpoints"


def _cache(model: torch.nn.Module, weights) -> None:
    path = weights_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)


def test_weights_path_is_where_torch_hub_caches_the_url(hub):
    assert weights_path(ResNet18_Weights.IMAGENET1K_V1) == hub / "resnet18-f37072fd.pth"


def test_pretrained_torchvision_loads_the_cached_file_bit_identically(hub):
    torch.manual_seed(0)
    saved = torchvision.models.resnet18(weights=None)
    _cache(saved, ResNet18_Weights.DEFAULT)
    loaded = pretrained_torchvision("resnet18")
    assert not loaded.training
    expected = saved.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_pretrained_torchvision_builds_googlenet_as_torchvision_does(hub):
    # GoogLeNet changes its architecture for pretrained weights; torchvision's own builder, which
    # reads the same cached file, is the oracle.
    torch.manual_seed(0)
    weights = GoogLeNet_Weights.DEFAULT
    _cache(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False), weights)
    ours = pretrained_torchvision("googlenet", "IMAGENET1K_V1")
    theirs = torchvision.models.googlenet(weights=weights).eval()
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_missing_weights_say_where_to_put_the_file_and_where_to_get_it(hub):
    with pytest.raises(WeightsNotFoundError) as caught:
        pretrained_torchvision("resnet18", ResNet18_Weights.IMAGENET1K_V1)
    message = str(caught.value)
    assert str(hub / "resnet18-f37072fd.pth") in message
    assert ResNet18_Weights.IMAGENET1K_V1.url in message
    assert "allow_download=True" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_a_failed_download_says_where_to_put_the_file(hub, monkeypatch):
    # A proxy on a closed local port makes the download fail at once, as it does offline; with
    # no host exempt from the proxy, nothing can reach the network.
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(WeightsNotFoundError) as caught:
        pretrained_torchvision("resnet18", allow_download=True)
    assert str(hub / "resnet18-f37072fd.pth") in str(caught.value)
    assert not list(hub.glob("*.pth"))


def test_resolve_weights_accepts_members_and_names():
    expected = ResNet18_Weights.IMAGENET1K_V1
    for weights in (expected, "DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        assert resolve_weights("resnet18", weights) is expected


def test_resolve_weights_suggests_close_architecture_and_lists_weights_names():
    with pytest.raises(ValueError, match="'resnet81'.*resnet18"):
        resolve_weights("resnet81")
    with pytest.raises(ValueError, match="'IMAGENET'.*IMAGENET1K_V1"):
        resolve_weights("resnet18", "IMAGENET")


@pytest.mark.parametrize("name", ["MNIST", "CIFAR10"])
def test_missing_torchvision_dataset_raises_a_clear_error(tmp_path, name):
    with pytest.raises(DatasetNotFoundError, match=f"{name} is not in .*download=True"):
        torchvision_dataset(name, tmp_path, train=False)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded


def test_unknown_torchvision_dataset_suggests_close_names(tmp_path):
    with pytest.raises(ValueError, match="'CIFAR11'.*CIFAR10"):
        torchvision_dataset("CIFAR11", tmp_path)
