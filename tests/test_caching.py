"""Feature caching: the head trained on cached features equals the head trained by ``fit``."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.seeding import seed_everything
from ftlib.surgery.freezing import freeze
from ftlib.surgery.states import prepare
from ftlib.training import evaluate, fit
from ftlib.training.caching import extract_features, fit_head_cached


class BNNet(nn.Module):
    """A small CNN whose body has batch norm and dropout: both must be held in eval mode."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x))


def images(n=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=generator), torch.arange(n) % 3)


def state_two_net():
    """Same weights every call; batch-norm statistics moved off their defaults; body frozen."""
    torch.manual_seed(0)
    net = BNNet()
    with torch.no_grad():
        net(torch.randn(32, 3, 8, 8) * 2 + 1)  # train-mode pass sets non-trivial BN statistics
    freeze(net, "body")  # default policy holds the body's BN and dropout in eval mode
    return net


def train_head(trainer, **kwargs):
    net = state_two_net()
    generator = seed_everything(123)
    train = DataLoader(images(), batch_size=16, shuffle=True, generator=generator)
    history = trainer(net, train, epochs=3, lr=1e-2, progress=False, **kwargs)
    return net, history


def test_cached_head_training_matches_uncached_fit():
    uncached, uncached_history = train_head(fit)
    cached, cached_history = train_head(fit_head_cached)
    torch.testing.assert_close(cached.head.weight, uncached.head.weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cached.head.bias, uncached.head.bias, rtol=1e-5, atol=1e-5)
    assert cached_history.column("train_loss") == pytest.approx(
        uncached_history.column("train_loss"), rel=1e-5
    )
    for name, tensor in state_two_net().body.state_dict().items():
        assert torch.equal(cached.body.state_dict()[name], tensor), name  # body untouched


def test_cached_validation_matches_evaluating_the_whole_model():
    val = DataLoader(images(n=40, seed=1), batch_size=16)
    net, history = train_head(fit_head_cached, val_loader=val)
    expected = evaluate(net, val, progress=False)
    assert history.last["val_loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert history.last["val_top1"] == pytest.approx(expected["top1"])


def test_extract_features_records_the_head_input_in_dataset_order():
    net, dataset = state_two_net(), images(n=40)
    net.train()
    shuffled = DataLoader(dataset, batch_size=16, shuffle=True)
    before = torch.get_rng_state()
    features, targets = extract_features(net, shuffled, progress=False).tensors
    assert torch.equal(torch.get_rng_state(), before)  # reading the data drew no random numbers
    net.eval()
    with torch.no_grad():
        expected = net.body(dataset.tensors[0])
    torch.testing.assert_close(features, expected)
    assert torch.equal(targets, dataset.tensors[1])
    assert net.training is False  # the mode it had was restored


def test_fit_head_cached_refuses_a_body_that_still_trains():
    net = BNNet()
    loader = DataLoader(images(), batch_size=16)
    with pytest.raises(ValueError, match="freeze the body first"):
        fit_head_cached(net, loader, epochs=1, progress=False)


def test_fit_head_cached_refuses_a_model_that_transforms_the_head_output():
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 3), nn.LogSoftmax(dim=1))
    net[0].requires_grad_(False)
    loader = DataLoader(images(), batch_size=16)
    with pytest.raises(ValueError, match="transforms the output of its head '1'"):
        fit_head_cached(net, loader, epochs=1, progress=False)


def test_extract_features_rejects_an_empty_dataset():
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="empty"):
        extract_features(state_two_net(), empty, progress=False)


def test_auxiliary_heads_left_trainable_by_prepare_do_not_stop_a_cached_head():
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    prepare(model, "head", num_classes=3)
    assert model.aux1.fc2.weight.requires_grad, "prepare leaves the new auxiliary heads trainable"
    aux_before = model.aux1.fc2.weight.detach().clone()
    data = DataLoader(
        TensorDataset(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])), batch_size=2
    )
    history = fit_head_cached(model, data, epochs=1, topk=(1,), progress=False)
    assert len(history) == 1 and model.fc.out_features == 3
    assert torch.equal(model.aux1.fc2.weight, aux_before), "only the main head trains on the cache"
