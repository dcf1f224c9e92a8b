"""Measure why deep networks are hard to train: vanishing and exploding gradients, saturation.

The backward pass multiplies the loss gradient by one layer Jacobian per layer, so the gradient
that reaches layer 1 of an L-layer net is a product of L - 1 factors. At initialisation each
factor scales its norm by about sqrt(chi), chi = fan_in * Var(w) * E[phi'(z)^2], hence the
first-over-last ratio ||dL/dz_1|| / ||dL/dz_L|| ~ chi^((L-1)/2): it vanishes for chi < 1 and
explodes for chi > 1. The tools here measure that, for any model:

- ``activation_grad_norms``: ||dL/dz|| of every layer's output z (its pre-activation), via hooks;
- ``weight_grad_norms``: ||dL/dW|| of every parameter, which can look healthy while dL/dz collapses;
- ``activation_stats``: mean, std, fraction of exact zeros (dead ReLUs) and of saturated units;
- ``jacobian_singular_values`` and ``participation_ratio``: how many directions of the input a
  network still responds to (Duvenaud et al. 2014);
- ``deep_mlp`` builds the bias-free MLPs of the experiments; ``sigmoid_chain_gradient`` the
  scalar chain that shows why sigmoid' <= 1/4 makes deep sigmoid nets vanish.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LayerTypes = tuple[type[nn.Module], ...]

GRAD_LAYER_TYPES: LayerTypes = (nn.Linear, nn.Conv2d)
"""Layers whose outputs are pre-activations z = W h (+ b): where dL/dz is measured."""

ACTIVATION_LAYER_TYPES: LayerTypes = (nn.ReLU, nn.Sigmoid, nn.Tanh)
"""Layers whose outputs ``activation_stats`` describes by default."""

SATURATION_MARGIN = 0.01
"""A sigmoid or tanh output within this distance of an asymptote counts as saturated: there the
derivative is below 0.01 (sigmoid) or 0.02 (tanh), so almost no gradient passes."""

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
"""The activations ``deep_mlp`` knows, by name."""

INITS = ("default", "xavier", "he", "orthogonal", "orthogonal:<s>", "normal:<s>")
"""The weight initialisations ``deep_mlp`` knows; ``<s>`` is a variance scale (see ``deep_mlp``)."""

_ASYMPTOTES: dict[type[nn.Module], tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0),
    nn.Tanh: (-1.0, 1.0),
}


def activation_grad_norms(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    layer_types: LayerTypes = GRAD_LAYER_TYPES,
) -> dict[str, float]:
    """Run one forward and backward pass and return ||dL/dz|| for every layer output z.

    Why: the gradient with respect to a layer's output is what the backward pass hands to the
    layers below; its norm layer by layer shows where the signal vanishes or explodes. Weight
    gradients alone can hide this (see ``weight_grad_norms``).

    Forward hooks on the ``layer_types`` modules attach a gradient hook to each output tensor;
    the forward hooks are removed again even if the forward pass fails. The model's existing
    ``.grad`` fields are cleared first, so ``weight_grad_norms(model)`` afterwards reads the
    gradients of this batch. The model's train/eval mode is left as it is.

    To reproduce the lesson's initialisation ratios, use ``loss_fn=lambda out, c: (out * c).sum()``
    with ``targets`` a fixed N(0, 1) tensor ``c`` shaped like the output: then dL/dz_L = c is
    a random direction independent of the network. With MSE to random targets dL/dz_L contains
    the output itself, which a ReLU net maps back along its largest singular directions: the
    ratio of a ReLU + He net then reads about 3.4 instead of about 1 (width 256, depth 10).

    Args:
        model: the network; every ``layer_types`` module in it is measured.
        inputs: one batch of inputs.
        targets: what ``loss_fn`` compares the outputs with.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``. None: cross-entropy for integer
            targets (class labels), mean squared error for floating-point targets.
        layer_types: which modules' outputs to measure.

    Returns:
        ``{module name: ||dL/dz||}`` in the order the layers ran forward (the Frobenius norm over
        the whole batch). A layer that runs twice reports the norm over both calls. Layers whose
        output needs no gradient (everything before them frozen) are left out.

    Raises:
        ValueError: the model has no module of ``layer_types``.
    """
    loss_fn = loss_fn if loss_fn is not None else _default_loss(targets)
    norms: dict[str, list[float]] = {}

    def attach_grad_hook(name: str, module: nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            calls = norms.setdefault(name, [])  # created now, so the dict keeps forward order
            output.register_hook(lambda grad: calls.append(_norm(grad)))

    model.zero_grad(set_to_none=True)
    with _forward_hooks(model, layer_types, attach_grad_hook):
        loss = loss_fn(model(inputs), targets)
    loss.backward()
    return {name: math.hypot(*calls) for name, calls in norms.items()}


def weight_grad_norms(model: nn.Module) -> dict[str, float]:
    """Return ||dL/dW|| for every parameter that has a gradient (after a backward pass).

    Why: this is what an optimiser sees. dL/dW_l = dL/dz_l^T h_(l-1) multiplies the backward
    signal by the forward activations; with PyTorch's default init both shrink, in opposite
    directions, so the weight gradients of a tanh or ReLU net look balanced across layers while
    dL/dz collapses by orders of magnitude. Look at ``activation_grad_norms`` too.

    Args:
        model: a model on which ``backward()`` has run.

    Returns:
        ``{parameter name: ||grad||}`` in registration order.

    Raises:
        ValueError: no parameter has a gradient yet.
    """
    norms = {name: _norm(p.grad) for name, p in model.named_parameters() if p.grad is not None}
    if not norms:
        raise ValueError(
            f"no parameter of {type(model).__name__} has a gradient; run loss.backward() "
            "(or activation_grad_norms(model, inputs, targets)) first"
        )
    return norms


def activation_stats(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    layer_types: LayerTypes = ACTIVATION_LAYER_TYPES,
) -> dict[str, dict[str, float]]:
    """Describe what every activation layer outputs on one batch (no gradients are computed).

    Why: a unit that is always zero (a dead ReLU) or pinned near an asymptote (a saturated
    sigmoid or tanh) passes (almost) no gradient, whatever the loss says.

    Args:
        model: the network; its train/eval mode is left as it is.
        inputs: one batch of inputs.
        layer_types: which modules' outputs to describe (activation layers by default).

    Returns:
        ``{module name: {"mean", "std", "zero_fraction", "saturated_fraction"}}`` in forward order,
        over all elements of the output (all calls, if a layer runs more than once).
        ``zero_fraction`` counts exact zeros. ``saturated_fraction`` counts outputs within
        ``SATURATION_MARGIN`` of an asymptote of a ``nn.Sigmoid`` or ``nn.Tanh``; it is 0.0 for
        layers without asymptotes (a ReLU's zeros are in ``zero_fraction``).

    Raises:
        ValueError: the model has no module of ``layer_types``.
    """
    outputs: dict[str, list[torch.Tensor]] = {}
    kinds: dict[str, nn.Module] = dict(model.named_modules())

    def record(name: str, module: nn.Module, args: Any, output: Any) -> None:
        # A copy: an in-place activation after this layer (ReLU(inplace=True)) would overwrite it.
        outputs.setdefault(name, []).append(output.detach().flatten().to(torch.float32, copy=True))

    with torch.no_grad(), _forward_hooks(model, layer_types, record):
        model(inputs)
    return {name: _describe(torch.cat(parts), kinds[name]) for name, parts in outputs.items()}


def jacobian_singular_values(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """Singular values of the Jacobian d fn(x) / d x at one input, largest first.

    Why: the singular values say how strongly the network responds along each input direction.
    When one dominates, the network has become sensitive to a single direction and its effective
    degrees of freedom collapse (see ``participation_ratio``).

    The full Jacobian is built (``torch.autograd.functional.jacobian``, vectorised), so keep
    ``fn`` small: its size is ``fn(x).numel() x x.numel()``.

    Args:
        fn: a function or module mapping a tensor to a tensor.
        x: the point at which to differentiate (any shape; it is flattened).

    Returns:
        A 1-D tensor of ``min(fn(x).numel(), x.numel())`` singular values, in descending order.
    """
    jacobian = torch.autograd.functional.jacobian(fn, x.detach(), vectorize=True)
    return torch.linalg.svdvals(jacobian.reshape(-1, x.numel()))


def participation_ratio(singular_values: torch.Tensor | Sequence[float]) -> float:
    """The effective number of directions in a spectrum: (sum s^2)^2 / sum s^4.

    Why: one number for "how many singular values matter". It is k for k equal singular values
    (and zeros elsewhere), and it falls towards 1 as one direction dominates.

    Args:
        singular_values: the spectrum s (non-negative; e.g. ``jacobian_singular_values(...)``).

    Returns:
        A float between 1 and the number of singular values.

    Raises:
        ValueError: the spectrum is empty or all zero.
    """
    s = torch.as_tensor(singular_values, dtype=torch.float64).flatten()
    if s.numel() == 0 or not bool(s.abs().max() > 0):
        raise ValueError(
            f"participation_ratio needs at least one non-zero singular value, got {s.tolist()}"
        )
    power = (s / s.abs().max()) ** 2  # scaled so that s^4 neither overflows nor underflows
    return (power.sum() ** 2 / (power**2).sum()).item()


def deep_mlp(
    depth: int,
    width: int,
    activation: str,
    init: str,
    *,
    in_features: int | None = None,
    out_features: int | None = None,
) -> nn.Sequential:
    """Build a bias-free MLP of ``depth`` linear layers for vanishing/exploding experiments.

    Why: with no biases and one width, how the gradient grows or shrinks depends only on the
    activation and the weight variance, so the lesson can vary one of them at a time.

    Layout: ``Linear, act, Linear, act, ..., Linear`` (``depth`` Linear layers, an activation
    after all but the last, whose output is the network's output z_L).

    Args:
        depth: number of Linear layers, >= 1.
        width: units per hidden layer, >= 1.
        activation: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.
        init: how to draw the weights (n = fan-in):
            ``"default"`` PyTorch's own nn.Linear init, U(+-1/sqrt(n)) (kaiming_uniform, a=sqrt(5));
            ``"xavier"`` Glorot & Bengio's normalised init U(+-sqrt(6/(n_in + n_out))), gain 1;
            ``"he"`` N(0, 2/n);
            ``"orthogonal"`` a scaled orthogonal matrix, gain ``nn.init.calculate_gain(activation)``
            (sqrt(2) for relu, 5/3 for tanh, 1 for sigmoid);
            ``"orthogonal:<s>"`` orthogonal with gain sqrt(s) (entry variance s/n), e.g.
            ``"orthogonal:1"`` for Saxe et al.'s plain orthogonal init;
            ``"normal:<s>"`` N(0, s/n), e.g. ``"normal:4"``.
        in_features: input size (default ``width``).
        out_features: output size (default ``width``).

    Returns:
        An ``nn.Sequential`` on the CPU in float32 (move it with ``.to(device)``).

    Raises:
        ValueError: an unknown activation or init, or a size that is not a positive int.
    """
    for name, value in (("depth", depth), ("width", width)):
        _check_size(name, value)
    in_features = width if in_features is None else in_features
    out_features = width if out_features is None else out_features
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        _check_size(name, value)
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; choose one of {', '.join(map(repr, ACTIVATIONS))}"
        )
    initialise = _weight_init(init, activation)

    sizes = [in_features] + [width] * (depth - 1) + [out_features]
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(fan_in, fan_out, bias=False)  # built with PyTorch's default init
        if initialise is not None:
            initialise(linear.weight)
        layers.append(linear)
        if index < depth - 1:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def sigmoid_chain_gradient(depth: int, x0: float = 0.0) -> float:
    """d/dx0 of sigmoid(sigmoid(...sigmoid(x0))), ``depth`` sigmoids with unit weights.

    Why: the smallest vanishing-gradient example. Each factor sigmoid'(x_k) is at most 1/4
    (at 0) and the chain settles at x* ~ 0.659 where sigmoid' ~ 0.225, so the derivative falls
    like 0.225^depth: about 6.8e-4 for 5 sigmoids, 3.9e-7 for 10, 1.3e-13 for 20.

    Args:
        depth: number of sigmoids, >= 0 (0 gives the derivative of the identity, 1.0).
        x0: the input.

    Returns:
        The derivative, computed with autograd in float64.

    Raises:
        ValueError: ``depth`` is not a non-negative int.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be an int >= 0, got {depth!r}")
    x = torch.tensor(float(x0), dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(depth):
        y = torch.sigmoid(y)
    (gradient,) = torch.autograd.grad(y, x)
    return gradient.item()


@contextlib.contextmanager
def _forward_hooks(
    model: nn.Module, layer_types: LayerTypes, hook: Callable[..., None]
) -> Iterator[None]:
    """Call ``hook(name, module, args, output)`` after every ``layer_types`` module; always
    remove the hooks again, so a failed measurement leaves no hooks behind in the model."""
    handles = [
        module.register_forward_hook(functools.partial(hook, name))
        for name, module in model.named_modules()
        if isinstance(module, layer_types)
    ]
    if not handles:
        names = ", ".join(kind.__name__ for kind in layer_types)
        raise ValueError(
            f"{type(model).__name__} has no {names} layer to measure; pass "
            "layer_types=(...) with the layer classes it uses"
        )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _default_loss(targets: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return F.mse_loss if torch.is_floating_point(targets) else F.cross_entropy


def _norm(tensor: torch.Tensor) -> float:
    # Divide by the largest entry first: squaring float32 gradients of 1e-20 and below (deep
    # sigmoid nets) would underflow to zero and report a norm of 0.
    tensor = tensor.detach().to(torch.promote_types(tensor.dtype, torch.float32))
    peak = tensor.abs().max()
    if not bool(peak > 0):
        return 0.0
    return peak.item() * torch.linalg.vector_norm(tensor / peak).item()


def _describe(values: torch.Tensor, module: nn.Module) -> dict[str, float]:
    low, high = next(
        (bounds for kind, bounds in _ASYMPTOTES.items() if isinstance(module, kind)),
        (-math.inf, math.inf),
    )
    saturated = (values <= low + SATURATION_MARGIN) | (values >= high - SATURATION_MARGIN)
    return {
        "mean": values.mean().item(),
        "std": values.std(correction=0).item(),
        "zero_fraction": (values == 0).float().mean().item(),
        "saturated_fraction": saturated.float().mean().item(),
    }


def _check_size(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _weight_init(init: str, activation: str) -> Callable[[torch.Tensor], Any] | None:
    """The function that draws a weight matrix for ``init``; None keeps PyTorch's default."""
    name, colon, scale_text = init.partition(":") if isinstance(init, str) else (None, "", "")
    if colon and name in ("normal", "orthogonal"):
        scale = _variance_scale(init, scale_text)
        if name == "normal":
            return functools.partial(_scaled_normal_, scale=scale)
        return functools.partial(nn.init.orthogonal_, gain=math.sqrt(scale))
    named = {
        "default": None,
        "xavier": nn.init.xavier_uniform_,
        "he": functools.partial(nn.init.kaiming_normal_, nonlinearity="relu"),
        "orthogonal": functools.partial(
            nn.init.orthogonal_, gain=nn.init.calculate_gain(activation)
        ),
    }
    if not colon and name in named:
        return named[name]
    raise ValueError(
        f"unknown init {init!r}; choose one of {', '.join(map(repr, INITS))}, where <s> is the "
        "weight variance times the fan-in (e.g. 'normal:4' for N(0, 4/n))"
    )


def _variance_scale(init: str, text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(
            f"init {init!r}: the variance scale after ':' must be a positive number, "
            "e.g. 'normal:4' for N(0, 4/n)"
        )
    return scale


def _scaled_normal_(weight: torch.Tensor, scale: float) -> torch.Tensor:
    """N(0, scale / fan_in), in place."""
    return nn.init.normal_(weight, 0.0, math.sqrt(scale / weight.shape[1]))
