"""Find a model's classifier head and replace it with a fresh one for a new set of classes.

Generic first: the head is the last ``nn.Linear`` (or 1x1 ``nn.Conv2d``, as in SqueezeNet) in
registration order, which holds for every torchvision classifier and for most custom models.
Auxiliary heads (GoogLeNet ``aux1``/``aux2``, Inception v3 ``AuxLogits``) are found by name.
"""

from __future__ import annotations

from torch import nn


class HeadNotFoundError(ValueError):
    """No classifier head could be found (or the one named does not exist)."""


def find_head(model: nn.Module) -> str:
    """The qualified name of the classifier head of ``model``.

    Why: fine-tuning replaces the head, and every architecture names it differently
    (``fc``, ``classifier.6``, ``heads.head``, ``classifier.1`` ...).

    Returns:
        The name of the last ``nn.Linear`` or 1x1 ``nn.Conv2d`` in registration order that is
        not inside a submodule whose name mentions "aux" (unless every such layer is).

    Raises:
        HeadNotFoundError: the model has no such layer; the message lists the layers with
            parameters that could be named with ``head="..."``.
    """
    layers = _head_like(model)
    if not layers:
        raise HeadNotFoundError(
            f"no classifier head (nn.Linear or 1x1 nn.Conv2d) found in {type(model).__name__}; "
            f"{_candidates_hint(model)}"
        )
    roots = _aux_roots(model)
    outside = [name for name in layers if not _inside_aux(name, roots)]
    return (outside or layers)[-1]


def find_aux_heads(model: nn.Module) -> list[str]:
    """Qualified names of the auxiliary classifier heads (empty for most models).

    Why: GoogLeNet and Inception v3 train with extra classifiers in the middle of the network;
    they need new classes too, or their loss cannot be computed.

    Returns:
        For each outermost submodule whose name contains "aux" (any case), the last head-like
        layer inside it, e.g. ``["aux1.fc2", "aux2.fc2"]`` or ``["AuxLogits.fc"]``, provided it
        has as many outputs as the main head: a block merely named "aux" is not a classifier.
    """
    main = find_head(model)
    classes = _outputs(model.get_submodule(main))
    layers = _head_like(model)
    heads = []
    for root in _aux_roots(model):
        inside = [name for name in layers if name.startswith(root + ".")]
        if inside and inside[-1] != main and _outputs(model.get_submodule(inside[-1])) == classes:
            heads.append(inside[-1])
    return heads


def all_heads(model: nn.Module) -> list[nn.Module]:
    """The classifier head and the auxiliary heads of ``model``, as modules.

    Why: after ``swap_head`` all of them are new and random, so all of them belong in the
    optimizer's fast "head" group (``ftlib.param_groups``) and train in state 2.

    Raises:
        HeadNotFoundError: the model has no head.
    """
    return [model.get_submodule(name) for name in (find_head(model), *find_aux_heads(model))]


def swap_head(model: nn.Module, num_classes: int, *, head: str | None = None) -> nn.Module:
    """Replace the classifier head (and any auxiliary heads) with fresh layers.

    Why: the pretrained head predicts the pretraining classes; a new task needs a new,
    randomly initialised head with one output per new class, on top of the same features.

    Args:
        model: the model to change in place.
        num_classes: number of outputs of the new head(s).
        head: the name of the head when ``find_head`` picks the wrong layer, e.g. ``"fc"``.

    Returns:
        The new main head (already inside the model), with the old head's in-features, bias
        presence, dtype and device.

    Raises:
        HeadNotFoundError: no head found, or ``head`` names no ``nn.Linear``/``nn.Conv2d``.
        ValueError: ``num_classes`` is not a positive integer.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    name = find_head(model) if head is None else head
    modules = dict(model.named_modules())
    old = modules.get(name) if name else None
    if not isinstance(old, (nn.Linear, nn.Conv2d)):
        found = "no module" if old is None else f"a {type(old).__name__}"
        raise HeadNotFoundError(
            f"head={name!r} is {found} in {type(model).__name__}, not an nn.Linear or "
            f"nn.Conv2d; {_candidates_hint(model)}"
        )
    aux_heads = [aux for aux in find_aux_heads(model) if aux != name]
    new = _fresh_like(old, num_classes)
    _replace(model, name, new)
    for aux in aux_heads:
        _replace(model, aux, _fresh_like(model.get_submodule(aux), num_classes))
    return new


def _is_head_like(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def _outputs(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _head_like(model: nn.Module) -> list[str]:
    """Names of the Linear and 1x1 Conv2d layers of ``model`` (not the model itself)."""
    return [name for name, module in model.named_modules() if name and _is_head_like(module)]


def _aux_roots(model: nn.Module) -> list[str]:
    """Outermost submodules whose own name mentions "aux"."""
    roots: list[str] = []
    for name, _ in model.named_modules():
        if "aux" in name.rpartition(".")[2].lower() and not _inside_aux(name, roots):
            roots.append(name)
    return roots


def _inside_aux(name: str, aux: list[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in aux)


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
        return nn.Linear(old.in_features, num_classes, **like)
    if old.groups != 1:
        raise HeadNotFoundError(
            f"cannot rebuild a grouped convolution ({old}) as a classifier head; pass the name of "
            "the layer that produces the class scores as head='...'"
        )
    return nn.Conv2d(
        old.in_channels,
        num_classes,
        old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        dilation=old.dilation,
        padding_mode=old.padding_mode,
        **like,
    )


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
