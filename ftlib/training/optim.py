"""Optimizer parameter groups for fine-tuning: a faster head, a slower body.

The new head starts from random weights and must move far; the pretrained body is already good
and should move little. The groups also keep weight decay off biases and normalisation weights,
and leave frozen parameters out so the optimizer never touches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ftlib.surgery.heads import all_heads

HEAD_LR_MULT = 10.0
"""How much faster the new head learns than the pretrained body (a common default)."""


def param_groups(
    model: nn.Module,
    head: nn.Module | Sequence[nn.Module] | None = None,
    *,
    lr: float,
    head_lr_mult: float = HEAD_LR_MULT,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim`` with discriminative learning rates.

    Why: one learning rate is either too small for a fresh head or too large for pretrained
    features. Weight decay pulls weights towards zero, which makes sense for weight matrices but
    not for biases and the scales of normalisation layers.

    Args:
        model: the model being fine-tuned.
        head: the head module(s) inside ``model`` (e.g. what ``swap_head`` returned). Their
            parameters are recognised by identity, not by name. None takes the classifier head
            and any auxiliary heads (``ftlib.all_heads``).
        lr: learning rate of the body.
        head_lr_mult: the head learns at ``lr * head_lr_mult``.
        weight_decay: applied to weights only: not to biases, not to the parameters of
            normalisation layers (batch, layer, group, instance norm), not to any other
            one-dimensional parameter.

    Returns:
        Up to four groups, named ``"body"``, ``"body_no_decay"``, ``"head"``,
        ``"head_no_decay"``, each a dict with ``params``, ``lr``, ``weight_decay`` and ``name``.
        Frozen parameters are left out and empty groups dropped.

    Raises:
        ValueError: a head module is not part of ``model``, or nothing in ``model`` trains.
    """
    if head is None:
        heads = all_heads(model)
    else:
        heads = [head] if isinstance(head, nn.Module) else list(head)
    submodules = {id(module) for module in model.modules()}
    for module in heads:
        if id(module) not in submodules:
            raise ValueError(
                f"the head {type(module).__name__} is not a submodule of {type(model).__name__}; "
                "pass the module that is inside the model (swap_head returns it)"
            )
    head_ids = {id(p) for module in heads for p in module.parameters()}
    no_decay_ids = _no_decay_ids(model)
    groups: dict[str, dict[str, Any]] = {}
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        in_head = id(parameter) in head_ids
        decays = id(parameter) not in no_decay_ids
        name = ("head" if in_head else "body") + ("" if decays else "_no_decay")
        group = groups.setdefault(
            name,
            {
                "params": [],
                "lr": lr * head_lr_mult if in_head else lr,
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
    order = ["body", "body_no_decay", "head", "head_no_decay"]
    return [groups[name] for name in order if name in groups]


_NORMALISATION = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, InstanceNorm*d
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


def _no_decay_ids(model: nn.Module) -> set[int]:
    """Biases, the parameters of normalisation layers, and every other 1-d parameter."""
    ids = set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if isinstance(module, _NORMALISATION) or name == "bias" or parameter.ndim <= 1:
                ids.add(id(parameter))
    return ids
