"""Specification of ftlib.analysis.diagnostics, checked against PyTorch and the reference numbers.

The initialisation ratios follow /work/shared/reference/science.md: bias-free MLPs of width 256,
a batch of 128 N(0, 1) inputs, seeds 0-4, loss = sum(output * c) with c a fixed N(0, 1) tensor
(so dL/dz_L = c), ratio = ||dL/dz_1|| / ||dL/dz_L||, geometric mean over the seeds.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ftlib.analysis.diagnostics import (
    activation_grad_norms,
    activation_stats,
    deep_mlp,
    jacobian_singular_values,
    participation_ratio,
    sigmoid_chain_gradient,
    weight_grad_norms,
)

WIDTH, BATCH, SEEDS = 256, 128, range(5)


def _projection_loss(outputs: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    return (outputs * directions).sum()


def _first_over_last(norms: dict[str, float]) -> float:
    values = list(norms.values())
    return values[0] / values[-1]


@functools.cache  # the weight-gradient test reuses the runs of the ratio table
def _init_ratios(activation: str, init: str, depth: int = 10) -> tuple[tuple[float, ...], ...]:
    """Activation-gradient and weight-gradient first/last ratios at initialisation, per seed."""
    z_ratios, w_ratios = [], []
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = deep_mlp(depth, WIDTH, activation, init)
        inputs, directions = torch.randn(BATCH, WIDTH), torch.randn(BATCH, WIDTH)
        norms = activation_grad_norms(model, inputs, directions, loss_fn=_projection_loss)
        z_ratios.append(_first_over_last(norms))
        w_ratios.append(_first_over_last(weight_grad_norms(model)))
    return tuple(z_ratios), tuple(w_ratios)


def _geometric_mean(values: tuple[float, ...]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


@pytest.mark.parametrize(
    ("activation", "init", "low", "high"),
    [
        ("relu", "he", 0.85, 1.10),  # science.md 0.94-1.04; chi = 1
        ("relu", "normal:4", 19.0, 25.0),  # 21-24; chi = 2, 2^4.5 = 22.6
        ("tanh", "xavier", 0.25, 0.31),  # 0.28
        ("tanh", "orthogonal:1", 0.25, 0.31),  # 0.28 (plain orthogonal, gain 1)
        ("relu", "default", 1e-4, 1e-3),  # ~3e-4; chi = 1/6
        ("tanh", "default", 2e-3, 1e-2),  # ~5e-3
        ("sigmoid", "default", 7e-9, 7e-8),  # ~2e-8; chi ~ 1/48
        ("sigmoid", "xavier", 7e-7, 7e-6),  # ~2e-6
    ],
)
def test_init_gradient_ratio_at_depth_10_matches_reference(activation, init, low, high):
    z_ratios, _ = _init_ratios(activation, init)
    assert low <= _geometric_mean(z_ratios) <= high, z_ratios


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_weight_gradients_look_healthy_while_activation_gradients_vanish(activation):
    z_ratios, w_ratios = _init_ratios(activation, "default")
    assert max(z_ratios) < 1e-2
    assert all(0.5 < ratio < 2.0 for ratio in w_ratios), w_ratios


def test_activation_grad_norms_match_retained_gradients_in_forward_order():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    inputs, targets = torch.randn(16, 4), torch.randn(16, 3)
    norms = activation_grad_norms(model, inputs, targets)

    outputs = []
    hidden = inputs
    for layer in model:
        hidden = layer(hidden)
        if isinstance(layer, nn.Linear):
            hidden.retain_grad()
            outputs.append(hidden)
    F.mse_loss(hidden, targets).backward()

    assert list(norms) == ["0", "2", "4"]
    expected = [output.grad.norm().item() for output in outputs]
    assert list(norms.values()) == pytest.approx(expected, rel=1e-5)


def test_activation_grad_norms_uses_cross_entropy_for_class_labels():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    inputs, labels = torch.randn(8, 4), torch.randint(0, 3, (8,))
    logits = model(inputs).detach().requires_grad_()
    F.cross_entropy(logits, labels).backward()
    assert activation_grad_norms(model, inputs, labels)["0"] == pytest.approx(
        logits.grad.norm().item(), rel=1e-5
    )


def test_layer_called_twice_reports_the_norm_over_both_calls():
    torch.manual_seed(0)
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    inputs, targets = torch.randn(8, 4), torch.randn(8, 4)
    first = shared(inputs)
    first.retain_grad()
    second = shared(torch.tanh(first))
    second.retain_grad()
    F.mse_loss(second, targets).backward()
    expected = math.hypot(first.grad.norm().item(), second.grad.norm().item())
    assert activation_grad_norms(model, inputs, targets) == {"0": pytest.approx(expected)}


def test_tiny_gradients_do_not_underflow_to_zero():
    torch.manual_seed(0)
    model = deep_mlp(3, 16, "tanh", "xavier")
    inputs, directions = torch.randn(4, 16), torch.randn(4, 16)
    norms = activation_grad_norms(model, inputs, directions, loss_fn=_projection_loss)
    tiny = activation_grad_norms(
        model, inputs, directions, loss_fn=lambda out, c: 1e-30 * _projection_loss(out, c)
    )
    for name, norm in norms.items():
        assert tiny[name] == pytest.approx(1e-30 * norm, rel=1e-4)


def test_hooks_are_removed_after_measuring_and_after_a_failed_forward():
    model = deep_mlp(3, 8, "relu", "he")
    activation_grad_norms(model, torch.randn(2, 8), torch.randn(2, 8))
    activation_stats(model, torch.randn(2, 8))
    with pytest.raises(RuntimeError):
        activation_grad_norms(model, torch.randn(2, 5), torch.randn(2, 8))  # wrong input size
    assert all(not module._forward_hooks for module in model.modules())


def _vgg_like(inplace: bool) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(inplace=inplace), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )


def test_in_place_relu_after_a_layer_does_not_change_what_is_measured():
    inputs, labels = torch.randn(2, 3, 8, 8), torch.tensor([0, 2])
    assert activation_grad_norms(_vgg_like(True), inputs, labels) == pytest.approx(
        activation_grad_norms(_vgg_like(False), inputs, labels)
    )
    conv_stats = activation_stats(_vgg_like(True), inputs, layer_types=(nn.Conv2d,))["0"]
    assert conv_stats["zero_fraction"] == 0.0  # the pre-activation, not the ReLU's output
    assert conv_stats["mean"] == pytest.approx(_vgg_like(False)[0](inputs).mean().item())


def test_model_without_measurable_layers_raises_naming_layer_types():
    with pytest.raises(ValueError, match="layer_types"):
        activation_grad_norms(nn.Sequential(nn.ReLU()), torch.randn(2, 3), torch.randn(2, 3))


def test_weight_grad_norms_equal_parameter_gradient_norms():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    model(torch.randn(8, 4)).pow(2).sum().backward()
    expected = {name: p.grad.norm().item() for name, p in model.named_parameters()}
    assert weight_grad_norms(model) == pytest.approx(expected, rel=1e-6)


def test_weight_grad_norms_before_backward_says_what_to_run():
    with pytest.raises(ValueError, match="backward"):
        weight_grad_norms(nn.Linear(2, 2))


def test_activation_stats_count_zeros_and_saturated_units():
    inputs = torch.tensor([[-10.0, 0.0, 0.5, 10.0]])
    stats = activation_stats(nn.Sequential(nn.Tanh(), nn.ReLU(), nn.Sigmoid()), inputs)
    tanh = torch.tanh(inputs)
    assert stats["0"] == pytest.approx(
        {
            "mean": tanh.mean().item(),
            "std": tanh.std(correction=0).item(),
            "zero_fraction": 0.25,
            "saturated_fraction": 0.5,  # tanh(-10) and tanh(10)
        }
    )
    assert stats["1"]["zero_fraction"] == 0.5  # relu(tanh(...)): -1 and 0 become 0
    assert stats["1"]["saturated_fraction"] == 0.0  # ReLU has no asymptote
    assert stats["2"]["saturated_fraction"] == 0.0  # sigmoid of values in [0, 1]


def test_activation_stats_see_half_of_relu_units_dead_under_he_init():
    torch.manual_seed(0)
    model = deep_mlp(4, WIDTH, "relu", "he").train()
    stats = activation_stats(model, torch.randn(BATCH, WIDTH))
    assert list(stats) == ["1", "3", "5"]
    assert all(0.45 < layer["zero_fraction"] < 0.55 for layer in stats.values())
    assert model.training


def test_jacobian_singular_values_of_a_linear_map_are_those_of_its_matrix():
    torch.manual_seed(0)
    linear = nn.Linear(5, 3)
    values = jacobian_singular_values(linear, torch.randn(5))
    expected = torch.linalg.svdvals(linear.weight.detach())
    torch.testing.assert_close(values, expected)
    assert torch.all(values[:-1] >= values[1:])


def test_jacobian_flattens_batched_input_and_output():
    torch.manual_seed(0)
    linear = nn.Linear(6, 4, bias=False)
    values = jacobian_singular_values(linear, torch.randn(1, 6))
    torch.testing.assert_close(values, torch.linalg.svdvals(linear.weight.detach()))


def test_layer_jacobians_of_tanh_nets_match_glorot_and_bengio():
    """Mean singular value of each layer's Jacobian over 5 tanh layers: ~0.5 with the standard
    init U(+-1/sqrt(n)), ~0.7-0.8 with the normalised (Xavier) init (Glorot & Bengio 2010)."""
    means = {}
    for init in ("default", "xavier"):
        torch.manual_seed(0)
        net = deep_mlp(6, 128, "tanh", init)
        hidden, layer_means = torch.rand(128), []
        for start in range(0, 10, 2):
            layer = net[start : start + 2]  # Linear, Tanh
            layer_means.append(jacobian_singular_values(layer, hidden).mean().item())
            hidden = layer(hidden).detach()
        means[init] = layer_means
    assert all(0.42 <= m <= 0.52 for m in means["default"]), means
    assert all(0.64 <= m <= 0.82 for m in means["xavier"]), means


@pytest.mark.parametrize(
    ("spectrum", "expected"),
    [([1.0, 1.0, 1.0, 0.0], 3.0), ([2.0, 0.0, 0.0], 1.0), ([1.0, 2**-0.5], 1.8)],
)
def test_participation_ratio_of_known_spectra(spectrum, expected):
    assert participation_ratio(spectrum) == pytest.approx(expected)


def test_participation_ratio_is_scale_free_even_for_tiny_values():
    spectrum = torch.tensor([3.0, 2.0, 1.0])
    assert participation_ratio(spectrum * 1e-30) == pytest.approx(participation_ratio(spectrum))


@pytest.mark.parametrize("spectrum", [[], [0.0, 0.0]])
def test_participation_ratio_of_an_empty_spectrum_raises(spectrum):
    with pytest.raises(ValueError, match="non-zero"):
        participation_ratio(spectrum)


@pytest.mark.parametrize(("depth", "expected"), [(5, 6.8e-4), (10, 3.9e-7), (20, 1.3e-13)])
def test_sigmoid_chain_gradient_matches_reference(depth, expected):
    assert sigmoid_chain_gradient(depth) == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("x0", "expected"), [(0, 0.25), (2, 0.105), (5, 6.6e-3), (10, 4.5e-5)])
def test_one_sigmoid_has_slope_at_most_a_quarter(x0, expected):
    assert sigmoid_chain_gradient(1, x0) == pytest.approx(expected, rel=0.01)


def test_deep_mlp_layout_is_linear_activation_pairs_without_bias():
    model = deep_mlp(3, 8, "tanh", "he", in_features=5, out_features=2)
    kinds = [type(layer) for layer in model]
    assert kinds == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    shapes = [tuple(layer.weight.shape) for layer in model if isinstance(layer, nn.Linear)]
    assert shapes == [(8, 5), (8, 8), (2, 8)]
    assert all(layer.bias is None for layer in model if isinstance(layer, nn.Linear))


def test_deep_mlp_default_init_is_pytorchs_own():
    torch.manual_seed(0)
    model = deep_mlp(2, 8, "relu", "default")
    torch.manual_seed(0)
    expected = [nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)]
    for layer, reference in zip(model[::2], expected, strict=True):
        torch.testing.assert_close(layer.weight, reference.weight)


@pytest.mark.parametrize(
    ("init", "variance"),
    [("he", 2 / 512), ("normal:4", 4 / 512), ("xavier", 1 / 512), ("default", 1 / (3 * 512))],
)
def test_deep_mlp_weight_variance_follows_the_init(init, variance):
    torch.manual_seed(0)
    weight = deep_mlp(1, 512, "relu", init)[0].weight.detach()
    assert weight.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert weight.var().item() == pytest.approx(variance, rel=0.02)


@pytest.mark.parametrize(
    ("activation", "init", "gain"),
    [("tanh", "orthogonal", 5 / 3), ("relu", "orthogonal", 2**0.5), ("tanh", "orthogonal:1", 1.0)],
)
def test_deep_mlp_orthogonal_init_has_the_activations_gain(activation, init, gain):
    weight = deep_mlp(1, 16, activation, init)[0].weight.detach()
    torch.testing.assert_close(weight @ weight.T, gain**2 * torch.eye(16))


@pytest.mark.parametrize(
    ("activation", "init", "listed"),
    [
        ("gelu", "he", "'relu'"),
        ("relu", "kaiming", "'orthogonal'"),
        ("relu", "normal", "'normal:<s>'"),
        ("relu", "xavier:2", "'xavier'"),
    ],
)
def test_deep_mlp_unknown_names_list_the_valid_ones(activation, init, listed):
    with pytest.raises(ValueError, match=listed):
        deep_mlp(2, 4, activation, init)


@pytest.mark.parametrize("init", ["normal:-1", "normal:abc", "orthogonal:0"])
def test_deep_mlp_rejects_a_bad_variance_scale(init):
    with pytest.raises(ValueError, match="positive number"):
        deep_mlp(2, 4, "relu", init)


@pytest.mark.parametrize(("depth", "width"), [(0, 4), (2, 0), (2.0, 4), (True, 4)])
def test_deep_mlp_rejects_sizes_that_are_not_positive_ints(depth, width):
    with pytest.raises(ValueError, match="positive int"):
        deep_mlp(depth, width, "relu", "he")
