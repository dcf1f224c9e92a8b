"""Optimizer parameter groups for fine-tuning: a faster head, a slower body.

The new head starts from random weights and must move far; the pretrained body is already good
and should move little. With ``layer_decay`` the body's rate also falls layer by layer towards
the input, as in BEiT, MAE and timm's ``param_groups_layer_decay``: early layers hold the most
generic features. The groups keep weight decay off biases, normalisation weights, class tokens
and position embeddings, and leave frozen parameters out so the optimizer never touches them.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from torch import nn

from ftlib._checks import as_rate, check_model
from ftlib.surgery.heads import HeadNames, all_heads
from ftlib.surgery.zoo import timm_layer_ids

HEAD_LR_MULT = 10.0
"""How much faster the new head learns than the pretrained body (a common default)."""

LAYER_DECAY = 0.75
"""The layer-wise decay of BEiT's and MAE's fine-tuning recipes (0.65 for BEiT's base model)."""

NO_DECAY_NAMES = (
    "cls_token",
    "class_token",
    "dist_token",
    "distillation_token",
    "reg_token",
    "pos_embed",
    "pos_embedding",
    "position_embeddings",
    "relative_position_bias_table",
)
"""Parameters without weight decay in every model, besides biases and 1-d parameters: tokens and
position embeddings, under the names torchvision, timm and Hugging Face give them. A model's own
``no_weight_decay()`` (timm's convention) adds to these."""

_PLAIN_STACKS = (nn.Sequential, nn.ModuleList)


def param_groups(
    model: nn.Module,
    head: nn.Module | HeadNames | list[nn.Module] | None = None,
    *,
    lr: float,
    head_lr_mult: float = HEAD_LR_MULT,
    weight_decay: float = 0.0,
    layer_decay: float | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim`` with discriminative learning rates.

    Why: one learning rate is either too small for a fresh head or too large for pretrained
    features. Weight decay pulls weights towards zero, which makes sense for weight matrices but
    not for biases, the scales of normalisation layers, tokens and position embeddings.

    Args:
        model: the model being fine-tuned.
        head: the head module(s) inside ``model`` (e.g. what ``swap_head`` returned) or their
            names. Modules are recognised by identity, not by name. None takes every classifier
            head (``ftlib.all_heads``: auxiliary and distillation heads too).
        lr: learning rate of the body (with ``layer_decay``: the rate the decay starts from).
        head_lr_mult: the head learns at ``lr * head_lr_mult``.
        weight_decay: applied to weights only: not to biases, not to the parameters of
            normalisation layers, not to any other one-dimensional parameter, not to the names
            in ``NO_DECAY_NAMES`` or in the model's own ``no_weight_decay()``.
        layer_decay: None for one body rate. A factor in (0, 1] for layer-wise decay: the body
            layer just below the head learns at ``lr * layer_decay``, the one below it at
            ``lr * layer_decay**2``, down to the stem. With ``head_lr_mult=1`` these are exactly
            timm's ``param_groups_layer_decay`` scales. The layers are those of ``body_layers``.

    Returns:
        Groups named ``"body"``, ``"body_no_decay"``, ``"head"``, ``"head_no_decay"`` (with
        ``layer_decay``: ``"layer0"``, ``"layer0_no_decay"``, ... from the input side instead of
        the two body groups), each a dict with ``params``, ``lr``, ``weight_decay`` and ``name``.
        Frozen parameters are left out and empty groups dropped.

    Raises:
        ValueError: a head is not part of ``model``, nothing in ``model`` trains, or a rate is
            negative, not finite or (``layer_decay``) outside (0, 1].
    """
    check_model(model, "param_groups")
    lr = as_rate(lr, "lr")
    head_lr_mult = as_rate(head_lr_mult, "head_lr_mult", positive=True)
    weight_decay = as_rate(weight_decay, "weight_decay")
    if layer_decay is not None:
        layer_decay = as_rate(layer_decay, "layer_decay", positive=True, at_most=1.0)
    head_ids = {id(p) for module in _head_modules(model, head) for p in module.parameters()}
    depth, top = _depths(model, head_ids) if layer_decay is not None else ({}, 0)
    no_decay_ids = _no_decay_ids(model)
    groups: dict[str, dict[str, Any]] = {}
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        in_head = id(parameter) in head_ids
        decays = id(parameter) not in no_decay_ids
        if in_head:
            name, rate = "head", lr * head_lr_mult
        elif layer_decay is None:
            name, rate = "body", lr
        else:
            layer = depth[id(parameter)]
            name, rate = f"layer{layer}", lr * layer_decay ** (top - layer)
        name += "" if decays else "_no_decay"
        group = groups.setdefault(
            name,
            {
                "params": [],
                "lr": rate,
                "weight_decay": weight_decay if decays else 0.0,
                "name": name,
            },
        )
        group["params"].append(parameter)
    if not groups:
        raise ValueError(
            f"every parameter of {type(model).__name__} is frozen, so there is nothing to "
            "optimise; unfreeze the head (ftlib.unfreeze) or prepare a training state"
        )
    return sorted(groups.values(), key=lambda group: _group_order(group["name"]))


def body_layers(model: nn.Module, head: HeadNames | None = None) -> list[list[str]]:
    """The names of the body's parameters, layer by layer from the input side.

    Why: layer-wise learning-rate decay needs to know how deep each parameter sits. timm models
    say so themselves (``group_matcher``, the grouping timm's own layer decay uses). For other
    models the module tree decides:

    - each child of an ``nn.Sequential`` or ``nn.ModuleList`` is one layer (a residual block, a
      transformer block); a plain ``nn.Sequential`` or ``nn.ModuleList`` inside is opened too;
    - a module outside these containers is opened into its parts when containers lie inside
      it (a ViT's encoder), and is one layer when none do (Inception v3's blocks) or when it
      holds several side by side (parallel branches, as in GoogLeNet's inception blocks);
    - single layers and parameters between two layers form one layer together: a ViT's class
      token, patch and position embeddings are its stem.

    Args:
        model: the model.
        head: the head's name(s), when ``ftlib.find_heads`` cannot tell.

    Returns:
        One list of parameter names per layer; the heads' parameters are not in any.
    """
    check_model(model, "body_layers")
    head_ids = {id(p) for module in all_heads(model, head) for p in module.parameters()}
    depth, top = _depths(model, head_ids)
    layers: list[list[str]] = [[] for _ in range(top + 1)]
    for name, parameter in model.named_parameters():
        if id(parameter) in depth:
            layers[depth[id(parameter)]].append(name)
    return [names for names in layers if names]


def _head_modules(model: nn.Module, head: Any) -> list[nn.Module]:
    if head is None or isinstance(head, str) or _all_strings(head):
        return all_heads(model, head)
    heads = [head] if isinstance(head, nn.Module) else list(head)
    submodules = {id(module) for module in model.modules()}
    for module in heads:
        if not isinstance(module, nn.Module) or id(module) not in submodules:
            raise ValueError(
                f"the head {type(module).__name__} is not a submodule of {type(model).__name__}; "
                "pass the module that is inside the model (swap_head returns it) or its name"
            )
    return heads


def _all_strings(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) for v in value)
    )


def _group_order(name: str) -> tuple[int, int, bool]:
    """body, layer0, layer1, ..., head; each group before its ``_no_decay`` twin."""
    base = name.removesuffix("_no_decay")
    rank = {"body": (0, 0), "head": (2, 0)}.get(base) or (1, int(base.removeprefix("layer")))
    return (*rank, name.endswith("_no_decay"))


def _depths(model: nn.Module, head_ids: set[int]) -> tuple[dict[int, int], int]:
    """The layer of every body parameter (by identity) from 0 at the input side, and the layer
    that learns at the full rate: one above the last body layer, or timm's top group."""
    named = [(name, p) for name, p in model.named_parameters() if id(p) not in head_ids]
    timm_ids = timm_layer_ids(model)
    if timm_ids is not None:  # the head is in timm's top group; anything else there is too
        return {id(p): timm_ids[name] for name, p in named}, max(timm_ids.values())
    layers = _tree_layers(model)
    layer_of = {name: index for index, names in enumerate(layers) for name in names}
    keys = [layer_of.get(name, -1) for name, _ in named]  # -1: parameters of the model itself
    dense = {key: index for index, key in enumerate(sorted(set(keys)))}
    return {id(p): dense[key] for (_, p), key in zip(named, keys, strict=True)}, len(dense)


def _tree_layers(model: nn.Module) -> list[list[str]]:
    """``body_layers``' rule for models without a ``group_matcher``, heads included."""
    units = _tree_units(model, "")
    merged: list[tuple[list[str], bool]] = []
    for names, is_block in units:
        if not is_block and merged and not merged[-1][1]:
            merged[-1][0].extend(names)
        else:
            merged.append((list(names), is_block))
    return [names for names, _ in merged]


def _tree_units(
    module: nn.Module, prefix: str, *, root: bool = True
) -> list[tuple[list[str], bool]]:
    """(parameter names, is a block) in registration order; only non-blocks are merged."""

    def names(of: nn.Module) -> list[str]:
        return [f"{prefix}{name}" for name, _ in of.named_parameters()]

    if type(module) in _PLAIN_STACKS:
        units: list[tuple[list[str], bool]] = []
        for name, child in module.named_children():
            if type(child) in _PLAIN_STACKS:
                units += _tree_units(child, f"{prefix}{name}.", root=False)
            elif _has_parameters(child):
                units.append(([f"{prefix}{name}.{n}" for n, _ in child.named_parameters()], True))
        return units
    if not root and next(module.children(), None) is None:  # one layer (Conv2d, LayerNorm)
        return [(names(module), False)]
    stacks = [c for c in module.children() if type(c) in _PLAIN_STACKS and _has_parameters(c)]
    has_stack = any(type(m) in _PLAIN_STACKS and _has_parameters(m) for m in module.modules())
    if not root and (not has_stack or len(stacks) > 1):  # a module without depth, or branches
        return [(names(module), True)]
    units = [([f"{prefix}{n}" for n, _ in module.named_parameters(recurse=False)], False)]
    for name, child in module.named_children():
        units += _tree_units(child, f"{prefix}{name}.", root=False)
    return [unit for unit in units if unit[0]]


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


_NORMALISATION = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, InstanceNorm*d
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


def _no_decay_ids(model: nn.Module) -> set[int]:
    """Biases, normalisation parameters, 1-d parameters, tokens, position embeddings, and the
    names (or glob patterns) of the ``no_weight_decay()`` of the model and of every module in it
    (a timm backbone inside a model of your own), each read relative to its module."""
    patterns = set()
    for prefix, module in model.named_modules():
        own = getattr(module, "no_weight_decay", None)
        if callable(own):
            patterns |= {f"{prefix}.{name}" if prefix else name for name in own()}
    ids = set()
    for module_name, module in model.named_modules():
        for name, parameter in module.named_parameters(recurse=False):
            qualified = f"{module_name}.{name}" if module_name else name
            if (
                isinstance(module, _NORMALISATION)
                or name == "bias"
                or parameter.ndim <= 1
                or name in NO_DECAY_NAMES
                or any(fnmatch.fnmatchcase(qualified, pattern) for pattern in patterns)
            ):
                ids.add(id(parameter))
    return ids
