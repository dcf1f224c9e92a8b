"""Freezing: choose which parameters of a model learn.

A frozen parameter has ``requires_grad=False``: it gets no gradient, so no optimizer moves it.
That alone is not enough for batch norm: its running statistics are buffers that update in every
forward pass in train mode (pytorch/pytorch#86590). ``BatchNormPolicy.EVAL`` holds frozen
batch-norm (and dropout) layers in eval mode, even after ``model.train()``.
"""

from __future__ import annotations

import difflib
import fnmatch
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ftlib._checks import as_count, check_materialised, check_model
from ftlib._choice import Choice

# Layers that behave differently in train and eval mode without learning anything: batch norm
# updates running statistics, dropout and stochastic depth inject noise.
_MODE_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
# Stochastic depth from other libraries, recognised by class name so that freezing never imports
# them: torchvision's StochasticDepth, timm's DropPath and DropBlock2d, and the *DropPath layers of
# Hugging Face models (BeitDropPath, ConvNextDropPath, SwinDropPath ...).
_MODE_LAYER_NAMES = ("StochasticDepth", "DropBlock2d")
_MODE_LAYER_SUFFIX = "DropPath"

Target = nn.Module | str
"""A module of the model, a name from ``named_modules``/``named_parameters`` or a glob pattern."""


class BatchNormPolicy(Choice):
    """What frozen batch-norm (and dropout, stochastic-depth) layers do in train mode.

    EVAL ("eval", the default): they stay in eval mode, even after ``model.train()``, so the
    running statistics stay those of pretraining and the frozen part computes exactly what it
    computed before. TRAIN ("train", PyTorch's behaviour): running statistics keep updating to
    the new data although the affine weights are frozen.

    The hold is a forward pre-hook, so it works with any training loop; between
    ``model.train()`` and the next forward pass a held layer's ``training`` flag reads True, but
    every forward pass runs it in eval mode.
    """

    EVAL = "eval"
    TRAIN = "train"


def freeze(
    model: nn.Module,
    targets: Target | Sequence[Target] | None = None,
    *,
    batchnorm: BatchNormPolicy | str = BatchNormPolicy.EVAL,
) -> list[str]:
    """Stop the selected parameters from learning.

    Why: a pretrained body that is frozen keeps its features; only the layers left trainable
    adapt to the new task.

    Args:
        model: the model to change in place.
        targets: None for the whole model, a submodule, a name (``"layer1"``,
            ``"fc.weight"``), a glob pattern (``"layer1.*"``) or a list of these.
        batchnorm: policy for the batch-norm, dropout and stochastic-depth layers inside the
            targets (see ``BatchNormPolicy``).

    Returns:
        Names of the parameters that this call froze (those already frozen are not listed).

    Raises:
        ValueError: a name matches nothing (close names are suggested), or a module is not part
            of the model.
    """
    check_model(model, "freeze")
    check_materialised(model, "freeze")
    policy = BatchNormPolicy.parse(batchnorm)
    names, roots = _resolve(model, targets)
    changed = _set_trainable(model, names, trainable=False)
    for layer in _mode_layers(roots):
        _hold_in_eval(layer, policy is BatchNormPolicy.EVAL, mode=model.training)
    return changed


def unfreeze(model: nn.Module, targets: Target | Sequence[Target] | None = None) -> list[str]:
    """Let the selected parameters learn again and release their batch-norm hold.

    Args:
        model: the model to change in place.
        targets: as for ``freeze``.

    Returns:
        Names of the parameters that this call unfroze.

    Raises:
        ValueError: as for ``freeze``.
    """
    check_model(model, "unfreeze")
    check_materialised(model, "unfreeze")
    names, roots = _resolve(model, targets)
    changed = _set_trainable(model, names, trainable=True)
    for layer in _mode_layers(roots):
        _hold_in_eval(layer, False, mode=model.training)
    return changed


def top_level_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The direct children of ``model`` that own parameters, in registration order.

    Why: these are the units that partial fine-tuning freezes from the input side
    (``freeze_to``); children without parameters (pooling, flatten) are not worth counting.
    """
    return [
        (name, child)
        for name, child in model.named_children()
        if next(child.parameters(), None) is not None
    ]


def freeze_to(model: nn.Module, k: int) -> list[str]:
    """Freeze the first ``k`` top-level blocks and unfreeze everything else.

    Why: early layers learn generic features (edges, textures) worth keeping; later layers are
    specific to the pretraining task. ``k`` moves the line between the two.

    Args:
        model: the model to change in place.
        k: how many blocks of ``top_level_blocks(model)`` to freeze, from 0 (train everything)
            to the number of blocks (train nothing). Parameters owned by ``model`` itself
            belong to no block and stay trainable.

    Returns:
        Names of the parameters in the frozen blocks.

    Raises:
        ValueError: ``k`` is not an integer or is outside ``0..len(top_level_blocks(model))``.
    """
    check_model(model, "freeze_to")
    check_materialised(model, "freeze_to")
    blocks = top_level_blocks(model)
    k = as_count(k, "k")
    if not 0 <= k <= len(blocks):
        names = ", ".join(name for name, _ in blocks)
        raise ValueError(
            f"k={k} is out of range: {type(model).__name__} has {len(blocks)} top-level blocks "
            f"({names}); use 0 <= k <= {len(blocks)}"
        )
    unfreeze(model)
    return freeze(model, [block for _, block in blocks[:k]]) if k else []


class BlockCount(NamedTuple):
    """Parameter counts of one top-level block (one row of a ``ParameterSummary``)."""

    name: str
    parameters: int
    trainable: int
    frozen: int


@dataclass(frozen=True)
class ParameterSummary:
    """How many parameters each top-level block has, and how many of them train.

    ``str(summary)`` is an aligned text table, notebooks show an HTML table, ``rows`` holds the
    numbers.
    """

    rows: list[BlockCount]

    @property
    def total(self) -> BlockCount:
        """The sums over all rows."""
        return BlockCount(
            "total",
            sum(row.parameters for row in self.rows),
            sum(row.trainable for row in self.rows),
            sum(row.frozen for row in self.rows),
        )

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = list(BlockCount._fields)
        cells = [[row.name] + [f"{n:,}" for n in row[1:]] for row in [*self.rows, self.total]]
        return header, cells

    def __str__(self) -> str:
        header, cells = self._table()
        widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

        def line(values: list[str]) -> str:
            padded = zip(values, widths, strict=True)
            return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(padded))

        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *map(line, cells[:-1]), rule, line(cells[-1])])

    def _repr_html_(self) -> str:
        header, cells = self._table()

        def row(values: list[str], tag: str) -> str:
            tds = "".join(
                f'<{tag} style="text-align:{"left" if i == 0 else "right"}">'
                f"{html.escape(v)}</{tag}>"
                for i, v in enumerate(values)
            )
            return f"<tr>{tds}</tr>"

        body = "".join(row(values, "td") for values in cells[:-1])
        return (
            f"<table><thead>{row(header, 'th')}</thead><tbody>{body}</tbody>"
            f"<tfoot>{row(cells[-1], 'th')}</tfoot></table>"
        )


def parameter_summary(model: nn.Module) -> ParameterSummary:
    """Count parameters per top-level block: total, trainable, frozen.

    Why: after freezing, this table shows at a glance what will learn. Parameters owned by
    ``model`` itself (a ViT's ``class_token``) get a row of their own; shared parameters are
    counted once.
    """
    check_model(model, "parameter_summary")
    check_materialised(model, "parameter_summary")
    counts: dict[str, list[int]] = {}
    for name, parameter in model.named_parameters():
        row = counts.setdefault(name.split(".")[0], [0, 0])
        row[0] += parameter.numel()
        row[1] += parameter.numel() if parameter.requires_grad else 0
    return ParameterSummary(
        [
            BlockCount(name, total, trainable, total - trainable)
            for name, (total, trainable) in counts.items()
        ]
    )


def _resolve(
    model: nn.Module, targets: Target | Sequence[Target] | None
) -> tuple[list[str], list[nn.Module]]:
    """Parameter names selected by ``targets`` and the modules whose mode layers they cover."""
    if targets is None:
        return [name for name, _ in model.named_parameters()], [model]
    if isinstance(targets, (nn.Module, str)) or not isinstance(targets, Iterable):
        targets = [targets]
    modules = dict(model.named_modules())
    module_ids = {id(module) for module in modules.values()}
    parameters = dict(model.named_parameters())
    roots: list[nn.Module] = []
    chosen: set[int] = set()
    for target in targets:
        if isinstance(target, nn.Module):
            if id(target) not in module_ids:
                raise ValueError(
                    f"the {type(target).__name__} passed as target is not a submodule of "
                    f"{type(model).__name__}; pass one of its submodules or a name from "
                    "model.named_modules()"
                )
            matched_modules, matched_parameters = [target], []
        elif isinstance(target, str):
            matched_modules, matched_parameters = _match_names(model, target, modules, parameters)
        else:
            raise TypeError(
                f"cannot freeze {target!r} ({type(target).__name__}); pass a module, a name, a "
                "glob pattern such as 'layer1.*', or a list of these"
            )
        roots += matched_modules
        chosen.update(id(p) for module in matched_modules for p in module.parameters())
        for name in matched_parameters:
            chosen.add(id(parameters[name]))
            owner = modules[name.rpartition(".")[0]]
            if _is_mode_layer(owner):  # "bn1.weight" holds bn1, "cls_token" nothing
                roots.append(owner)
    return [name for name, p in parameters.items() if id(p) in chosen], roots


def _match_names(
    model: nn.Module,
    target: str,
    modules: dict[str, nn.Module],
    parameters: dict[str, nn.Parameter],
) -> tuple[list[nn.Module], list[str]]:
    """Modules and parameter names that ``target`` names exactly or matches as a glob pattern."""
    module_names = [name for name in modules if name]  # "" is the model itself
    if any(char in target for char in "*?["):
        matched_modules = [modules[name] for name in fnmatch.filter(module_names, target)]
        matched_parameters = fnmatch.filter(parameters, target)
    else:
        matched_modules = [modules[target]] if target in module_names else []
        matched_parameters = [target] if target in parameters else []
    if not matched_modules and not matched_parameters:
        close = difflib.get_close_matches(target, [*module_names, *parameters], n=5, cutoff=0.6)
        blocks = [name for name, _ in top_level_blocks(model)]
        hint = (
            f"did you mean {', '.join(map(repr, close))}?"
            if close
            else f"its top-level blocks are {', '.join(map(repr, blocks))}."
        )
        raise ValueError(
            f"no module or parameter of {type(model).__name__} is named {target!r}; {hint} "
            "Names are those of model.named_modules() and model.named_parameters(); "
            "glob patterns such as 'layer1.*' work too."
        )
    return matched_modules, matched_parameters


def _set_trainable(model: nn.Module, names: list[str], *, trainable: bool) -> list[str]:
    parameters = dict(model.named_parameters())
    changed = [name for name in names if parameters[name].requires_grad != trainable]
    for name in changed:
        parameters[name].requires_grad_(trainable)
        if not trainable:
            # A leftover gradient would still let an optimizer step move the frozen parameter.
            parameters[name].grad = None
    return changed


def _mode_layers(roots: list[nn.Module]) -> list[nn.Module]:
    """The batch-norm, dropout and stochastic-depth layers inside ``roots``, each once."""
    seen: dict[int, nn.Module] = {}
    for root in roots:
        for module in root.modules():
            if _is_mode_layer(module):
                seen.setdefault(id(module), module)
    return list(seen.values())


def _is_mode_layer(module: nn.Module) -> bool:
    kind = type(module).__name__
    return (
        isinstance(module, _MODE_LAYERS)
        or kind in _MODE_LAYER_NAMES
        or kind.endswith(_MODE_LAYER_SUFFIX)
    )


def _force_eval(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
    """Forward pre-hook: whatever ``model.train()`` set, this layer runs in eval mode."""
    module.train(False)


def _hold_in_eval(layer: nn.Module, hold: bool, *, mode: bool) -> None:
    """Add or remove the eval hold on one layer; on release it returns to ``mode``.

    The hook is found again by identity in the layer's own hook table (not through a stored
    handle), so the hold survives ``copy.deepcopy`` and pickling and can still be released.
    """
    hooks = layer._forward_pre_hooks
    held = [key for key, hook in hooks.items() if hook is _force_eval]
    if hold and not held:
        layer.register_forward_pre_hook(_force_eval)
        layer.train(False)
    elif not hold and held:
        for key in held:
            del hooks[key]
        layer.train(mode)
