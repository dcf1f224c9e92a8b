"""Argument checks shared by the public functions, so that each bad value gets one clear message.

Counts accept any integral value (``7``, ``numpy.int64(7)``, ``torch.tensor(7)``) and refuse
floats and booleans; a model must be an ``nn.Module`` instance, not its class or builder, and the
functions that read or change parameters need them to exist (no lazy layer left uninitialised).
"""

from __future__ import annotations

import math
import operator
import os
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin


def as_count(value: Any, name: str, *, minimum: int = 0) -> int:
    """``value`` as a Python ``int`` of at least ``minimum``.

    Raises:
        ValueError: ``value`` is not integral (a float, a string, a bool, a tensor with more than
            one element) or is below ``minimum``; the message names the argument.
    """
    kind = "a positive" if minimum == 1 else "a non-negative" if minimum == 0 else "an"
    wanted = f"{name} must be {kind} integer"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise ValueError(f"{wanted}, got the boolean {value!r}; pass a number such as 2")
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{wanted}, got {value!r} ({type(value).__name__}); pass a whole number such as "
            f"{_example(value, minimum)}"
        ) from None
    if count < minimum:
        raise ValueError(f"{wanted}, got {count}; use {minimum} or more")
    return count


def as_rate(
    value: Any, name: str, *, positive: bool = False, at_most: float | None = None
) -> float:
    """``value`` as a finite ``float`` that is not negative (or > 0 with ``positive``).

    Raises:
        ValueError: ``value`` is not a real number, is NaN or infinite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_scalar(value):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    rate = float(value)
    low_ok = rate > 0 if positive else rate >= 0
    if not math.isfinite(rate) or not low_ok or (at_most is not None and rate > at_most):
        low = "> 0" if positive else ">= 0"
        high = f" and <= {at_most}" if at_most is not None else ""
        raise ValueError(f"{name} must be a finite number {low}{high}, got {value!r}")
    return rate


def check_model(model: Any, function: str) -> None:
    """Refuse anything but an ``nn.Module`` instance, naming what was passed instead.

    Raises:
        TypeError: ``model`` is a class, a builder function, a name or anything else.
    """
    if isinstance(model, nn.Module):
        return
    if isinstance(model, Mapping):
        hint = f"that is a state_dict, not the model; pass the model: {function}(model, ...)"
    elif isinstance(model, (str, os.PathLike)) and (
        os.sep in str(model) or Path(model).suffix in (".pt", ".pth", ".bin", ".safetensors")
    ):
        hint = f"that looks like a file path; the model comes first: {function}(model, path)"
    elif callable(model):  # a model class or a builder such as torchvision.models.resnet18
        name = getattr(model, "__name__", type(model).__name__)
        hint = f"build it first, e.g. {function}({name}(), ...)"
    elif isinstance(model, str):
        hint = (
            f"build the model first, e.g. torchvision.models.get_model({model!r}), "
            f"and pass it to {function}"
        )
    else:
        hint = f"pass the model (an nn.Module) to {function}"
    shown = reprlib.repr(model) if not isinstance(model, Mapping) else "a dict of tensors"
    raise TypeError(f"{function} needs an nn.Module, got {shown} ({type(model).__name__}); {hint}")


def is_uninitialised(module: nn.Module) -> bool:
    """A lazy layer (``nn.LazyLinear``, ``nn.LazyConv2d``) before its first forward pass."""
    return isinstance(module, LazyModuleMixin) and module.has_uninitialized_params()


def check_materialised(model: nn.Module, function: str) -> None:
    """Refuse, before anything changes, a model whose lazy layers have no parameters yet.

    Why: torch's "uninitialized parameter" error comes from deep inside, after part of the work
    (a swapped head, half the layers frozen) is done; a lazy layer's shapes exist only after the
    first forward pass.

    Raises:
        ValueError: naming the uninitialised layers and saying to run one forward pass first.
    """
    lazy = [name or "(the model)" for name, m in model.named_modules() if is_uninitialised(m)]
    if lazy:
        raise ValueError(
            f"{function} needs the parameters of every layer, but {type(model).__name__} has "
            f"lazy layers that get their shapes only on the first forward pass: "
            f"{', '.join(lazy)}. Run one forward pass first, e.g. model(next(iter(loader))[0]) "
            f"or model(torch.zeros(1, *input_shape)), then call {function}"
        )


def _is_scalar(value: Any) -> bool:
    """A one-element numeric tensor or NumPy scalar: ``float()`` reads it without surprise."""
    try:
        return getattr(value, "ndim", None) == 0 or getattr(value, "numel", lambda: 2)() == 1
    except TypeError:
        return False


def _example(value: Any, minimum: int) -> int:
    try:
        return max(minimum, round(float(value)))
    except (TypeError, ValueError, OverflowError):
        return max(minimum, 2)
