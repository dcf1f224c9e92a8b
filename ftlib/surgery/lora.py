"""LoRA: train a small low-rank change of frozen layers, between states 2 and 3.

Hu et al. (2021) keep a pretrained weight ``W`` (out x in) frozen and learn ``W + (alpha / r) B A``
instead, with ``A`` (r x in) and ``B`` (out x r) and a rank r far below in and out. ``B`` starts
at zero, so a wrapped model computes exactly what the pretrained one did, and each layer trains
``r (in + out)`` numbers rather than ``in x out``. Merging adds ``(alpha / r) B A`` into ``W``:
the same outputs, and no extra cost when predicting.

For a ``Conv2d`` (as in PEFT), ``A`` is a convolution into r channels with the layer's kernel,
stride, padding and dilation and ``B`` a 1x1 convolution from r to out channels:
``r (in kh kw + out)`` numbers. A 1x1 convolution is a linear layer applied at every pixel.

``add_lora`` wraps the chosen layers and freezes everything else except the modules that should
train fully, by default the classifier heads (a new head must learn from scratch, the pain of
huggingface/peft#310 and #602). ``save_lora`` writes what trains (adapters, head, anything
else unfrozen) to a file of kilobytes, ``load_lora`` puts it into a fresh pretrained model, and
``merge_lora`` folds the adapters into plain layers.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ftlib._checks import as_count, as_rate, check_model
from ftlib.surgery.freezing import freeze, unfreeze
from ftlib.surgery.heads import find_heads
from ftlib.training.checkpoint import (
    ArchitectureMismatchError,
    HeadMismatchError,
    read_payload,
    write_payload,
)

DEFAULT_RANK = 8
"""PEFT's default rank; the course's small models need far less (2 to 4)."""

Names = str | Sequence[str]
"""A module name or glob pattern from ``named_modules`` (``"block1.0"``, ``"layer*.conv1"``), or
a list of these."""


class LoRALayer(nn.Module):
    """A frozen layer ``base`` plus the trainable low-rank change ``(alpha / rank) B A``.

    ``base`` is kept as it is (``self.base``); ``lora_A`` starts like a layer's default weights
    and ``lora_B`` at zero, so the output equals ``base``'s until training moves ``lora_B``.
    """

    def __init__(
        self,
        base: nn.Module,
        rank: int,
        alpha: float,
        a_shape: tuple[int, ...],
        b_shape: tuple[int, ...],
    ) -> None:
        super().__init__()
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base = base
        self.rank, self.alpha = rank, alpha
        self.lora_A = nn.Parameter(torch.empty(a_shape, **like))
        self.lora_B = nn.Parameter(torch.zeros(b_shape, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own initialisation

    @property
    def scaling(self) -> float:
        """``alpha / rank``: what the low-rank path is multiplied by."""
        return self.alpha / self.rank

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / rank) B A`` in the shape of ``base.weight``: what merging adds to it."""
        product = self.lora_B.flatten(1) @ self.lora_A.flatten(1)
        return (product * self.scaling).view_as(self.base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``base(x)`` plus the low-rank path."""
        return self.base(x) + self.low_rank(x) * self.scaling

    def low_rank(self, x: torch.Tensor) -> torch.Tensor:
        """``B A x`` without the scaling."""
        raise NotImplementedError  # each kind of layer computes it its own way

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}"


class LoRALinear(LoRALayer):
    """LoRA around an ``nn.Linear``: ``lora_A`` is (rank, in), ``lora_B`` (out, rank)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__(base, rank, alpha, (rank, base.in_features), (base.out_features, rank))

    def low_rank(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.lora_A), self.lora_B)


class LoRAConv2d(LoRALayer):
    """LoRA around an ``nn.Conv2d`` (groups 1): ``lora_A`` is (rank, in, kh, kw), a convolution
    with the layer's kernel, stride, padding and dilation; ``lora_B`` (out, rank, 1, 1)."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float) -> None:
        a_shape = (rank, base.in_channels, *base.kernel_size)
        super().__init__(base, rank, alpha, a_shape, (base.out_channels, rank, 1, 1))

    def low_rank(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.base
        reduced = F.conv2d(x, self.lora_A, None, conv.stride, conv.padding, conv.dilation)
        return F.conv2d(reduced, self.lora_B)


def add_lora(
    model: nn.Module,
    targets: Names,
    *,
    rank: int = DEFAULT_RANK,
    alpha: float | None = None,
    trainable: Names | None = None,
) -> list[str]:
    """Wrap the chosen layers in LoRA adapters and freeze everything else but ``trainable``.

    Why: an adapter trains a small fraction of the parameters of full fine-tuning and leaves the
    pretrained weights as they were, so the source task is still there underneath.

    Args:
        model: the model to change in place, usually with its new head already swapped in.
        targets: the ``nn.Linear`` and ``nn.Conv2d`` layers to adapt, by name or glob pattern
            (``"block*.0"``); a pattern takes the Linear and Conv2d layers it matches, leaving
            out those in ``trainable`` and those already adapted.
        rank: r, the rank of the change, at least 1.
        alpha: the change is scaled by ``alpha / rank``; None takes ``alpha = rank``.
        trainable: modules that train fully beside the adapters, and are saved with them by
            ``save_lora``: None for the model's classifier heads (``ftlib.find_heads``), names
            or patterns, or ``[]`` for the adapters alone.

    Returns:
        The names of the layers wrapped by this call.

    Raises:
        ValueError: ``rank`` or ``alpha`` out of range; a target that matches no layer that can
            be adapted (close names are suggested), a layer of another kind, one that already
            has an adapter or trains fully; a grouped convolution or one with a padding mode
            other than zeros.
        HeadNotFoundError: ``trainable`` is None and the model's head cannot be found; name it,
            or pass ``trainable=[]``.
    """
    check_model(model, "add_lora")
    rank = as_count(rank, "rank", minimum=1)
    alpha = float(rank) if alpha is None else as_rate(alpha, "alpha", positive=True)
    kept = find_heads(model) if trainable is None else _module_names(model, trainable)
    names = _adaptable(model, targets, kept)
    for name in names:
        model.set_submodule(name, _adapter_for(model.get_submodule(name), rank, alpha))
    _train_only(model, kept)
    return names


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every adapter into its layer: ``W + (alpha / rank) B A``, a plain layer again.

    Why: for prediction the adapters are extra work; merged, the model has the original
    architecture and computes the same outputs (up to float rounding).

    Returns:
        The names of the merged layers (empty when there are no adapters). The merged layers
        stay frozen as their base layers were.
    """
    check_model(model, "merge_lora")
    adapters = _adapters(model)
    with torch.no_grad():
        for name, adapter in adapters.items():
            adapter.base.weight += adapter.delta_weight()
            model.set_submodule(name, adapter.base)
    return list(adapters)


def save_lora(
    model: nn.Module, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None
) -> Path:
    """Write what trains in a LoRA model and nothing else: the adapters, the head, and whatever
    else was left trainable (with the buffers of the modules that train whole).

    Why: the pretrained weights are already on every machine that has the base model; the
    file needs only what fine-tuning changed, kilobytes instead of the whole model.

    Args:
        model: a model prepared with ``add_lora``.
        path: the file to write (``ftlib.checkpoint_extra`` reads its ``extra``).
        extra: plain data to keep with it (class names, history, ...).

    Returns:
        The path written.

    Raises:
        ValueError: ``model`` has no adapters, or a parameter trains inside an adapted layer
            (only ``lora_A`` and ``lora_B`` should).
    """
    check_model(model, "save_lora")
    adapters = _adapters(model)
    if not adapters:
        raise ValueError(
            f"{type(model).__name__} has no LoRA adapters to save; add them with "
            "ftlib.add_lora, or save the whole model with ftlib.save_checkpoint"
        )
    state = {
        f"{name}.{part}": getattr(adapter, part)
        for name, adapter in adapters.items()
        for part in _LORA_PARTS
    }
    trained = _trained_parts(model, list(adapters))
    for name in trained:
        part = _part(model, name)
        if isinstance(part, nn.Module):
            prefix = f"{name}." if name else ""
            state.update({prefix + key: t for key, t in part.state_dict().items()})
        else:
            state[name] = part
    layers = {name: {"rank": a.rank, "alpha": a.alpha} for name, a in adapters.items()}
    return write_payload(
        model, path, extra=extra, state=state, lora={"layers": layers, "trainable": trained}
    )


def load_lora(
    model: nn.Module, path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Put the adapters and trained modules of a ``save_lora`` file into ``model``.

    Why: a model fine-tuned with LoRA is the pretrained model plus this file: rebuild the
    pretrained model, swap its head for the saved number of classes, and load the file.

    Args:
        model: the pretrained model, either without adapters (they are added as saved: the
            same layers, ranks and alphas, the same parts left trainable) or with exactly the
            saved ones.
        path: a file written by ``save_lora``.
        map_location: where tensors are loaded before being copied into the model.

    Returns:
        The ``extra`` dict saved with the adapters.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a ``save_lora`` file (a full checkpoint loads with
            ``ftlib.load_checkpoint``), or ``model`` has other adapters than the saved ones.
        HeadMismatchError: a saved head has other shapes than the model's (swap the head for
            the saved number of classes first).
        ArchitectureMismatchError: the model lacks a saved layer or has it in another shape.
        Nothing in ``model`` changes before these checks pass.
    """
    check_model(model, "load_lora")
    path = Path(path)
    payload = read_payload(path, map_location)
    lora = payload.get("lora")
    if lora is None:
        raise ValueError(
            f"{path} is a full checkpoint, not a LoRA adapter file; load it with "
            "ftlib.load_checkpoint"
        )
    layers: dict[str, dict[str, float]] = lora["layers"]
    trainable: list[str] = lora["trainable"]
    state: dict[str, torch.Tensor] = payload["state_dict"]
    present = _adapters(model)
    if present:
        _check_same_adapters(model, present, layers, path)
        adapters = present
    else:
        adapters = {name: _new_adapter(model, name, s, payload, path) for name, s in layers.items()}
    _check_state(model, adapters, state, trainable, path)
    if not present:
        for name, adapter in adapters.items():
            model.set_submodule(name, adapter)
        _train_only(model, trainable)
    model.load_state_dict(state, strict=False)
    return payload["extra"]


_LORA_PARTS = ("lora_A", "lora_B")


def _new_adapter(
    model: nn.Module, name: str, settings: dict[str, float], payload: dict[str, Any], path: Path
) -> LoRALayer:
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        layer = None
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        found = "no such layer" if layer is None else f"a {type(layer).__name__}"
        raise ArchitectureMismatchError(
            f"{path} adapts {name}, a layer of the {payload['model_class']} it was saved from; "
            f"{type(model).__name__} has {found} there. Build the pretrained model the "
            "adapters were trained on"
        )
    return _adapter_for(layer, int(settings["rank"]), float(settings["alpha"]))


def _check_same_adapters(
    model: nn.Module,
    present: dict[str, LoRALayer],
    layers: dict[str, dict[str, float]],
    path: Path,
) -> None:
    have = {name: (a.rank, a.alpha) for name, a in present.items()}
    saved = {name: (int(s["rank"]), float(s["alpha"])) for name, s in layers.items()}
    if have != saved:
        raise ValueError(
            f"{type(model).__name__} already has other LoRA adapters ({_some(sorted(have))}) "
            f"than {path} ({_some(sorted(saved))}, ranks and alphas included); load the file "
            "into the pretrained model without adapters"
        )


def _check_state(
    model: nn.Module,
    adapters: dict[str, LoRALayer],
    state: dict[str, torch.Tensor],
    trainable: list[str],
    path: Path,
) -> None:
    """Every saved entry has a place of the same shape in the model (once adapted)."""
    own = {
        f"{name}.{part}": getattr(adapter, part).shape
        for name, adapter in adapters.items()
        for part in _LORA_PARTS
    }
    own.update({key: t.shape for key, t in model.state_dict().items() if key not in own})
    for key, tensor in state.items():
        if own.get(key) == tensor.shape:
            continue
        found = tuple(own[key]) if key in own else "not there"
        difference = f"{key} is {tuple(tensor.shape)} in {path} but {found} in the model"
        if key in own and _inside(key, trainable):
            raise HeadMismatchError(
                f"{difference}: swap the head for the saved number of classes first "
                f"(ftlib.swap_head(model, {tensor.shape[0]}))"
            )
        raise ArchitectureMismatchError(
            f"{difference}; build the pretrained model the adapters were trained on"
        )


def _adapter_for(layer: nn.Module, rank: int, alpha: float) -> LoRALayer:
    kind = LoRALinear if isinstance(layer, nn.Linear) else LoRAConv2d
    return kind(layer, rank, alpha)


def _train_only(model: nn.Module, kept: list[str]) -> None:
    """Freeze everything (batch norm held in eval), then let the adapters and ``kept`` learn."""
    freeze(model)
    adapters = [f"{name}.{part}" for name in _adapters(model) for part in _LORA_PARTS]
    unfreeze(model, adapters + kept)


def _adapters(model: nn.Module) -> dict[str, LoRALayer]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALayer)}


def _trained_parts(model: nn.Module, adapters: list[str]) -> list[str]:
    """What trains outside the adapters: the outermost modules whose parameters all train (a
    head), and single parameters that train in a module that also holds frozen ones."""
    modules: list[str] = []
    for name, module in model.named_modules():
        own = list(module.parameters())
        if _inside(name, adapters) or _inside(name, modules) or not own:
            continue
        if all(p.requires_grad for p in own):
            modules.append(name)
    adapter_parts = {f"{name}.{part}" for name in adapters for part in _LORA_PARTS}
    loose = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and name not in adapter_parts and not _inside(name, modules)
    ]
    inside = [name for name in loose if _inside(name, adapters)]
    if inside:
        raise ValueError(
            f"{_some(inside)} train inside adapted layers, where only lora_A and lora_B should; "
            "freeze them (ftlib.freeze), or save the whole model with ftlib.save_checkpoint"
        )
    return modules + loose


def _part(model: nn.Module, name: str) -> nn.Module | nn.Parameter:
    modules = dict(model.named_modules())
    return modules[name] if name in modules else model.get_parameter(name)


def _inside(name: str, roots: Sequence[str]) -> bool:
    return any(root == "" or name == root or name.startswith(root + ".") for root in roots)


def _module_names(model: nn.Module, names: Names) -> list[str]:
    """Exact module or parameter names for ``names`` (names or glob patterns), each checked."""
    names = [names] if isinstance(names, str) else list(names)
    modules = [name for name, _ in model.named_modules() if name]
    modules += [name for name, _ in model.named_parameters()]
    found: list[str] = []
    for name in names:
        matched = _matching(modules, name)
        if not matched:
            raise ValueError(
                f"no module or parameter of {type(model).__name__} is named {name!r}"
                f"{_close(name, modules)}; names are those of model.named_modules() and "
                "model.named_parameters()"
            )
        found += [m for m in matched if m not in found]
    return found


def _adaptable(model: nn.Module, targets: Names, kept: list[str]) -> list[str]:
    """The Linear and Conv2d layers ``targets`` names, checked to be adaptable."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets:
        raise ValueError("targets is empty; name the layers to adapt, e.g. 'layer4.*.conv2'")
    adapted = list(_adapters(model))
    modules = dict(model.named_modules())
    layers = [
        name
        for name, module in modules.items()
        if name
        and isinstance(module, (nn.Linear, nn.Conv2d))
        and not _inside(name, adapted)
        and not _inside(name, kept)
    ]
    chosen: list[str] = []
    for target in targets:
        if not isinstance(target, str):
            raise TypeError(
                f"targets must be layer names or glob patterns, got {target!r} "
                f"({type(target).__name__})"
            )
        if not _is_pattern(target):
            _check_named_layer(modules, target, adapted, kept)
        matched = _matching(layers, target)
        if not matched:
            raise ValueError(
                f"{target!r} matches no Linear or Conv2d layer of {type(model).__name__} that "
                f"can be adapted{_close(target, layers)}; the layers that can: {_some(layers)}"
            )
        chosen += [name for name in matched if name not in chosen]
    for name in chosen:
        _check_supported(name, modules[name])
    return chosen


def _check_named_layer(
    modules: dict[str, nn.Module], name: str, adapted: list[str], kept: list[str]
) -> None:
    layer = modules.get(name)
    if layer is None:
        return  # the caller reports it, with the close names
    if _inside(name, adapted):
        raise ValueError(f"{name} already has a LoRA adapter; merge_lora first to adapt it again")
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise ValueError(
            f"{name} is a {type(layer).__name__}; LoRA adapts nn.Linear and nn.Conv2d layers: "
            f"name the layers inside it, e.g. '{name}.*'"
        )
    if _inside(name, kept):
        raise ValueError(
            f"{name} trains fully (it is in trainable: {kept}), so an adapter on it would add "
            "nothing; leave it out of targets, or out of trainable"
        )


def _check_supported(name: str, layer: nn.Module) -> None:
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        raise ValueError(
            f"{name} is a Conv2d with groups={layer.groups} and padding_mode="
            f"{layer.padding_mode!r}; LoRA supports groups=1 and padding_mode='zeros': adapt "
            "the 1x1 convolutions around it instead"
        )


def _matching(names: list[str], target: str) -> list[str]:
    if _is_pattern(target):
        return fnmatch.filter(names, target)
    return [target] if target in names else []


def _is_pattern(target: str) -> bool:
    return any(char in target for char in "*?[")


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def _some(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
