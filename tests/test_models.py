"""Specifications of ftlib.models (SmallCNN, shipped checkpoints) and ftlib.models.pretrain."""

from __future__ import annotations

from importlib import resources

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from ftlib.models import PRETRAINED, SmallCNN, load_pretrained, read_checkpoint
from ftlib.models.pretrain import CONFIGS, pretrain, save_pretrained, source_data
from ftlib.training import evaluate


@pytest.mark.parametrize(("in_channels", "size"), [(1, 8), (3, 16), (3, 32)])
def test_small_cnn_maps_images_of_several_sizes_to_logits(in_channels, size):
    model = SmallCNN(num_classes=7, in_channels=in_channels, width=8)
    logits = model(torch.rand(4, in_channels, size, size))
    assert logits.shape == (4, 7)
    assert model.features(torch.rand(4, in_channels, size, size)).shape == (4, 16)


def test_small_cnn_has_named_blocks_then_a_linear_head():
    model = SmallCNN()
    assert [name for name, _ in model.named_children()] == ["block1", "block2", "block3", "fc"]
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 32
    for block in (model.block1, model.block2, model.block3):
        assert [type(m) for m in block[:3]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert isinstance(model.block3[-1][0], nn.AdaptiveAvgPool2d)


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_checkpoint_reaches_its_stated_source_accuracy(name):
    model = load_pretrained(name)
    assert not model.training
    _, test = source_data(name)
    options = {"device": "cpu", "topk": (1,), "progress": False}
    accuracy = evaluate(model, DataLoader(test, batch_size=512), **options)["top1"]
    assert accuracy == pytest.approx(PRETRAINED[name].source_test_accuracy, abs=0.005)
    meta = read_checkpoint(name)["meta"]
    assert meta["source_test_accuracy"] == pytest.approx(accuracy, abs=0.005)
    assert meta["config"]["seed"] == CONFIGS[name].seed
    assert tuple(meta["classes"]) == PRETRAINED[name].classes


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_checkpoint_is_small(name):
    asset = resources.files("ftlib") / "assets" / PRETRAINED[name].filename
    assert len(asset.read_bytes()) < 100 * 1024


def test_load_pretrained_lists_the_names_for_an_unknown_one():
    with pytest.raises(ValueError, match=r"'digit'.*\['digits', 'shapes'\].*Did you mean 'digits'"):
        load_pretrained("digit")


def test_pretrain_is_deterministic_and_restores_global_settings():
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(False)
    first, meta = pretrain("digits", epochs=1)
    second, _ = pretrain("digits", epochs=1)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert meta["config"]["epochs"] == 1 and meta["model"]["in_channels"] == 1
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_saved_checkpoint_loads_back_into_the_same_model(tmp_path):
    model, meta = pretrain("digits", epochs=1)
    path = save_pretrained(model, meta, tmp_path)
    checkpoint = torch.load(path, weights_only=True)
    copy = SmallCNN(**checkpoint["meta"]["model"])
    copy.load_state_dict(checkpoint["state_dict"])
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(copy.eval()(x), model(x))
