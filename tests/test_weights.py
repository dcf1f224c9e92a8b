"""Specifications of ftlib.data.weights: torchvision weights and datasets from local files only."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
import torchvision
from torchvision.models import GoogLeNet_Weights, ResNet18_Weights

from ftlib.data import (
    DatasetNotFoundError,
    WeightsHashError,
    WeightsNotFoundError,
    pretrained_torchvision,
    resolve_weights,
    torchvision_architecture,
    torchvision_dataset,
    verify_hash,
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
    loaded = pretrained_torchvision("resnet18", check_hash=False)  # a file made here
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
    ours = pretrained_torchvision("googlenet", "IMAGENET1K_V1", check_hash=False)
    theirs = torchvision.models.googlenet(weights=weights).eval()
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


@pytest.mark.parametrize("arch", ["googlenet", "inception_v3", "resnet18"])
def test_torchvision_architecture_is_what_pretrained_weights_load_into(hub, arch):
    # The architecture rebuilt from two names must take the pretrained file's weights strictly,
    # with no file read for the building itself.
    weights = resolve_weights(arch)
    built = torchvision_architecture(arch, weights)
    assert not hub.exists()
    published = {  # the published files keep the auxiliary heads
        "googlenet": {"aux_logits": True, "init_weights": True},
        "inception_v3": {"init_weights": True},
    }
    _cache(torchvision.models.get_model(arch, weights=None, **published.get(arch, {})), weights)
    loaded = pretrained_torchvision(arch, check_hash=False)
    assert built.state_dict().keys() == loaded.state_dict().keys()
    built.load_state_dict(loaded.state_dict())
    assert built.training and not loaded.training


def test_torchvision_architecture_without_weights_is_the_default_build_and_checks_the_name():
    assert type(torchvision_architecture("mobilenet_v3_small")).__name__ == "MobileNetV3"
    with pytest.raises(ValueError, match="'resnet81'.*resnet18"):
        torchvision_architecture("resnet81")


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


def test_a_random_file_where_the_weights_belong_is_refused_with_the_way_to_the_right_one(hub):
    # The offline lesson reads whatever is at this path; a stranger file must not pass for
    # ImageNet weights, and code that falls back on missing weights falls back here too.
    torch.manual_seed(0)
    _cache(torchvision.models.resnet18(weights=None), ResNet18_Weights.IMAGENET1K_V1)
    with pytest.raises(WeightsHashError) as caught:
        pretrained_torchvision("resnet18")
    message = str(caught.value)
    assert str(hub / "resnet18-f37072fd.pth") in message and "not f37072fd" in message
    assert ResNet18_Weights.IMAGENET1K_V1.url in message and "Delete it" in message
    assert isinstance(caught.value, WeightsNotFoundError)


def _named_by_its_hash(folder, content: bytes, *, wrong: bool = False):
    prefix = hashlib.sha256(content).hexdigest()[:8]
    path = folder / f"weights-{'0' * 8 if wrong else prefix}.pth"
    path.write_bytes(content)
    return path


def test_a_file_whose_hash_matches_its_name_passes_and_a_cut_short_one_does_not(tmp_path):
    content = os.urandom(3000)
    verify_hash(_named_by_its_hash(tmp_path, content))
    cut = tmp_path / "cut"
    cut.mkdir()
    path = _named_by_its_hash(cut, content)
    path.write_bytes(content[:1000])  # the download stopped early
    with pytest.raises(WeightsHashError, match="1,000 bytes"):
        verify_hash(path, "https://example.org/weights.pth")


def test_the_verdict_is_kept_beside_the_file_so_an_unchanged_file_is_hashed_once(tmp_path):
    path = _named_by_its_hash(tmp_path, b"x" * 4096)
    verify_hash(path)
    record = path.with_name(path.name + ".sha256")
    assert record.is_file()
    # Same size and time stamp: the stored verdict is trusted, so the file is not read again.
    stat = path.stat()
    path.write_bytes(b"y" * 4096)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    verify_hash(path)
    # A new time stamp invalidates the verdict: the changed file is hashed and refused.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(WeightsHashError):
        verify_hash(path)


def test_where_the_verdict_cannot_be_stored_the_file_is_still_verified(tmp_path):
    path = _named_by_its_hash(tmp_path, b"z" * 100, wrong=True)
    path.with_name(path.name + ".sha256").mkdir()  # unwritable as a file, even for root
    for _ in range(2):
        with pytest.raises(WeightsHashError):
            verify_hash(path)


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
