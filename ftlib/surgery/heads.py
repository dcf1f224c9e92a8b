"""Find a model's classifier heads and replace them with fresh ones for a new set of classes.

Where a model's library declares its heads, that declaration wins: timm's
``pretrained_cfg["classifier"]`` and the task head outside a Hugging Face backbone
(``ftlib.surgery.zoo``). Otherwise the head is the last ``nn.Linear`` (or 1x1 ``nn.Conv2d``, as
in SqueezeNet) in registration order, which holds for every torchvision classifier and most
custom models; auxiliary heads (GoogLeNet ``aux1``/``aux2``, Inception v3 ``AuxLogits``) are
found by name. Where the registration order could mislead (a head registered before the body, a
second output such as a regression layer beside the classifier), the guess is refused with the
names to choose from, rather than made silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ftlib._checks import as_count, check_model, is_uninitialised
from ftlib.surgery.zoo import declared_heads, layer_outputs, record_num_classes, zoo_hint

HeadNames = str | Sequence[str]
"""One head's qualified name (``"fc"``) or several (``["head", "head_dist"]``)."""


class HeadNotFoundError(ValueError):
    """No classifier head could be found (or the one named does not exist)."""


class AmbiguousHeadError(HeadNotFoundError):
    """More than one layer could be the classifier head; the model's head must be named."""


def find_heads(model: nn.Module, head: HeadNames | None = None) -> list[str]:
    """The qualified names of all classifier heads of ``model``, the main head first.

    Why: fine-tuning replaces the head, every architecture names it differently (``fc``,
    ``classifier.6``, ``heads.head``), and some have several that must all be replaced: GoogLeNet's
    auxiliary heads, DeiT's and LeViT's distillation heads, CrossViT's head per branch.

    Args:
        model: the model.
        head: the head's name (or names) when the guess is wrong or ambiguous. The heads that
            belong with it (the other declared heads of a timm or Hugging Face model, auxiliary
            heads named "aux...") are added.

    Returns:
        The main head, then the other heads.

    Raises:
        HeadNotFoundError: no head found, or a named head does not exist; the message lists the
            layers that could be named with ``head=...``.
        AmbiguousHeadError: the guess could be wrong (see the module docstring); the message
            names the candidates.
    """
    check_model(model, "find_heads")
    declared = declared_heads(model)
    if head is not None:
        names = _named(model, head)
        if declared and names[0] in declared[1]:
            return [*names, *(name for name in declared[1] if name not in names)]
        return [*names, *(aux for aux in _aux_heads(model, names[0]) if aux not in names)]
    if declared is not None:
        zoo, names = declared
        if not names or not all(_is_head_like(_module(model, name)) for name in names):
            raise HeadNotFoundError(zoo_hint(zoo, model))
        return names
    main = _guess_head(model)
    return [main, *_aux_heads(model, main)]


def find_head(model: nn.Module) -> str:
    """The qualified name of the main classifier head of ``model`` (see ``find_heads``).

    Raises:
        HeadNotFoundError: no head found; the message lists the candidates.
        AmbiguousHeadError: more than one layer could be the head.
    """
    return find_heads(model)[0]


def find_aux_heads(model: nn.Module) -> list[str]:
    """The heads besides the main one: auxiliary, distillation or per-branch classifiers.

    Why: GoogLeNet and Inception v3 train with extra classifiers in the middle of the network,
    DeiT and LeViT average a distillation head with the class head; they need new classes too.
    A block merely named "aux" is not a classifier: an auxiliary head must have as many outputs
    as the main head.
    """
    return find_heads(model)[1:]


def all_heads(model: nn.Module, head: HeadNames | None = None) -> list[nn.Module]:
    """The classifier heads of ``model`` as modules, the main head first (see ``find_heads``).

    Why: after ``swap_head`` all of them are new and random, so all of them belong in the
    optimizer's fast "head" group (``ftlib.param_groups``) and train in state 2.
    """
    return [model.get_submodule(name) for name in find_heads(model, head)]


def swap_head(model: nn.Module, num_classes: int, *, head: HeadNames | None = None) -> nn.Module:
    """Replace the classifier head, and every head that belongs with it, with fresh layers.

    Why: the pretrained head predicts the pretraining classes; a new task needs a new,
    randomly initialised head with one output per new class, on top of the same features.

    Args:
        model: the model to change in place.
        num_classes: number of outputs of the new head(s): an integer (NumPy and one-element
            integer tensors are fine).
        head: the head's name (or names) when ``find_heads`` cannot tell, e.g. ``"fc"``.

    Returns:
        The new main head (already inside the model), with the old head's in-features, bias
        presence, dtype and device; a lazy head (``nn.LazyLinear``) stays lazy. The model's own
        class count (timm's ``num_classes``, Hugging Face's ``config.num_labels``) follows.

    Raises:
        HeadNotFoundError: no head found, or ``head`` names no ``nn.Linear``/``nn.Conv2d``.
        AmbiguousHeadError: ``head`` is needed to say which layer is the head.
        ValueError: ``num_classes`` is not a positive integer.
    """
    check_model(model, "swap_head")
    num_classes = as_count(num_classes, "num_classes", minimum=1)
    names = find_heads(model, head)
    fresh = [_fresh_like(model.get_submodule(name), num_classes) for name in names]
    for name, new in zip(names, fresh, strict=True):
        _replace(model, name, new)
    record_num_classes(model, num_classes)
    return fresh[0]


def _is_head_like(module: nn.Module | None) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def _module(model: nn.Module, name: str) -> nn.Module | None:
    return dict(model.named_modules()).get(name) if name else None


def _head_like(model: nn.Module) -> list[str]:
    """Names of the Linear and 1x1 Conv2d layers of ``model`` (not the model itself)."""
    return [name for name, module in model.named_modules() if name and _is_head_like(module)]


def _named(model: nn.Module, head: HeadNames) -> list[str]:
    """The names passed as ``head=...``, each checked to be a Linear or Conv2d of the model."""
    names = [head] if isinstance(head, str) else head
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise HeadNotFoundError(
            f"head must be a layer's name such as 'fc', or a list of names, got {head!r}; "
            f"{_candidates_hint(model)}"
        )
    for name in names:
        layer = _module(model, name)
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            found = "no module" if layer is None else f"a {type(layer).__name__}"
            raise HeadNotFoundError(
                f"head={name!r} is {found} in {type(model).__name__}, not an nn.Linear or "
                f"nn.Conv2d; {_candidates_hint(model)}"
            )
    return list(dict.fromkeys(names))


def _guess_head(model: nn.Module) -> str:
    """The last head-like layer outside the auxiliary heads, unless another one could be it."""
    layers = _head_like(model)
    if not layers:
        raise HeadNotFoundError(
            f"no classifier head (nn.Linear or 1x1 nn.Conv2d) found in {type(model).__name__}; "
            f"{_candidates_hint(model)}"
        )
    roots = _aux_roots(model)
    outside = [name for name in layers if not _inside(name, roots)] or layers
    guess = outside[-1]
    follower = _followed_by(model, guess)
    if follower:
        raise AmbiguousHeadError(_not_last_reason(model, guess, follower, outside))
    outside = [name for name in outside if not _followed_by(model, name)]
    for other in outside[:-1]:
        reason = _rival_reason(model, guess, other, layers)
        if reason:
            raise AmbiguousHeadError(
                f"cannot tell which layer is the classifier head of {type(model).__name__}: "
                f"{guess} ({_describe(model, guess)}) is registered last, but {other} "
                f"({_describe(model, other)}) {reason}. Name the head: head={other!r} or "
                f"head={guess!r} (or a list of both)"
            )
    return guess


def _followed_by(model: nn.Module, name: str) -> str:
    """The first layer with parameters or buffers that an ``nn.Sequential`` runs after ``name``
    (at any level above it), "" when none does: only a layer at the end can be an output."""
    parts = name.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        parent_name = ".".join(parts[:depth])
        parent = model.get_submodule(parent_name)
        if not isinstance(parent, nn.Sequential):
            continue
        keys = list(parent._modules)
        for key in keys[keys.index(parts[depth]) + 1 :]:
            later = parent._modules[key]
            if later is not None and next(_tensors(later), None) is not None:
                return f"{parent_name}.{key}" if parent_name else key
    return ""


def _tensors(module: nn.Module):
    yield from module.parameters()
    yield from module.buffers()


def _not_last_reason(model: nn.Module, guess: str, follower: str, layers: list[str]) -> str:
    """Why the last head-like layer cannot simply be swapped, and what to name instead."""
    classes = layer_outputs(model.get_submodule(guess))
    after = model.get_submodule(follower)
    sized = any(t.ndim >= 1 and t.shape[0] == classes for t in _tensors(after))
    start = (
        f"cannot tell which layer is the classifier head of {type(model).__name__}: {guess} "
        f"({_describe(model, guess)}) is registered last, but {follower} "
        f"({type(after).__name__}) runs after it"
    )
    if sized:
        return (
            f"{start} with one entry per output ({classes}), so a new head would not fit it. "
            f"Replace both yourself (e.g. a new {follower} for your classes), then pass "
            f"head={guess!r} to ftlib"
        )
    ending = [name for name in layers if not _followed_by(model, name)]
    named = f"head={ending[-1]!r} if that is the classifier, or " if ending else ""
    return f"{start}, so it is not the model's output. Name the head: {named}head='...'"


def _rival_reason(model: nn.Module, guess: str, other: str, layers: list[str]) -> str:
    """Why ``other``, registered before ``guess``, could be the head too; "" when it cannot.

    ``other`` is a rival when the forward pass could call the two in any order (their common
    parent is not an ``nn.Sequential``), it is the only head-like layer of its branch, nothing
    reads its outputs, and it reads either what ``guess`` computes (a head registered before
    the body) or the features that ``guess``'s branch reads (two outputs side by side, where
    either may be a single layer or an MLP such as a regression head or a SimCLR projector).
    """
    common = _common_parent(guess, other)
    if isinstance(model.get_submodule(common), nn.Sequential):
        return ""
    if _branch_layers(layers, other, common) != [other]:
        return ""
    rival, last = model.get_submodule(other), model.get_submodule(guess)
    entry = model.get_submodule(_branch_layers(layers, guess, common)[0])
    readers = (
        m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and m is not rival
    )
    if any(_inputs(layer) == layer_outputs(rival) for layer in readers):
        return ""
    if _inputs(rival) == layer_outputs(last):
        return "reads what it computes, so the head may have been registered before the body"
    if _inputs(rival) == _inputs(entry):
        return f"reads the same features as {guess}'s branch, so the model may have two outputs"
    if layer_outputs(rival) == layer_outputs(last):
        return (
            f"has as many outputs ({layer_outputs(last)}) and nothing reads them, so either may "
            "be the main classifier and the other a side one"
        )
    return ""


def _branch_layers(layers: list[str], name: str, common: str) -> list[str]:
    """The head-like layers in the child of ``common`` that holds ``name``, in order."""
    branch = ".".join(name.split(".")[: len(common.split(".")) + 1 if common else 1])
    return [layer for layer in layers if _inside(layer, [branch])]


def _common_parent(a: str, b: str) -> str:
    parts = []
    for x, y in zip(a.split(".")[:-1], b.split(".")[:-1], strict=False):
        if x != y:
            break
        parts.append(x)
    return ".".join(parts)


def _inputs(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def _describe(model: nn.Module, name: str) -> str:
    layer = model.get_submodule(name)
    inputs = "?" if is_uninitialised(layer) else _inputs(layer)
    return f"{type(layer).__name__} {inputs}->{layer_outputs(layer)}"


def _aux_heads(model: nn.Module, main: str) -> list[str]:
    """For each outermost submodule named "aux...", its last head-like layer with as many
    outputs as ``main`` (GoogLeNet ``aux1.fc2``, ``aux2.fc2``; Inception v3 ``AuxLogits.fc``)."""
    classes = layer_outputs(model.get_submodule(main))
    layers = _head_like(model)
    heads = []
    for root in _aux_roots(model):
        inside = [name for name in layers if _inside(name, [root]) and name != root]
        if (
            inside
            and inside[-1] != main
            and layer_outputs(model.get_submodule(inside[-1])) == classes
        ):
            heads.append(inside[-1])
    return heads


def _aux_roots(model: nn.Module) -> list[str]:
    """Outermost submodules whose own name mentions "aux"."""
    roots: list[str] = []
    for name, _ in model.named_modules():
        if "aux" in name.rpartition(".")[2].lower() and not _inside(name, roots):
            roots.append(name)
    return roots


def _inside(name: str, roots: list[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def _candidates_hint(model: nn.Module) -> str:
    """Name the layers a user could pass as ``head=...`` (the last few with parameters)."""
    layers = [
        (name, type(module).__name__)
        for name, module in model.named_modules()
        if name and next(module.parameters(recurse=False), None) is not None
    ][-5:]
    if not layers:
        return "the model has no layers with parameters to use as a head"
    listed = ", ".join(f"{name} ({kind})" for name, kind in layers)
    return f"candidates: {listed}. Pass the head's name, e.g. head={layers[-1][0]!r}"


def _fresh_like(old: nn.Linear | nn.Conv2d, num_classes: int) -> nn.Module:
    """A new layer like ``old`` (in-features, bias, dtype, device) with ``num_classes`` outputs."""
    like = {"bias": old.bias is not None, "device": old.weight.device, "dtype": old.weight.dtype}
    if isinstance(old, nn.Linear):
        if is_uninitialised(old):  # its in-features are known only after the first forward pass
            return nn.LazyLinear(num_classes, **like)
        return nn.Linear(old.in_features, num_classes, **like)
    if old.groups != 1:
        raise HeadNotFoundError(
            f"cannot rebuild a grouped convolution ({old}) as a classifier head; pass the name of "
            "the layer that produces the class scores as head='...'"
        )
    geometry = {
        "kernel_size": old.kernel_size,
        "stride": old.stride,
        "padding": old.padding,
        "dilation": old.dilation,
        "padding_mode": old.padding_mode,
    }
    if is_uninitialised(old):
        return nn.LazyConv2d(num_classes, **geometry, **like)
    return nn.Conv2d(old.in_channels, num_classes, **geometry, **like)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
