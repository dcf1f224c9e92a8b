"""Save a model's weights to a file and load them back, head and all or body only.

A checkpoint trained for 10 classes does not fit a model with a fresh 5-class head. Loading it
raises ``HeadMismatchError``, which says so and points to ``body_only=True``: load everything but
the head, which is exactly how a fine-tuning run reuses a pretrained body.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftlib.surgery.heads import HeadNotFoundError, find_aux_heads, find_head

_FORMAT = "ftlib.checkpoint/1"


class HeadMismatchError(ValueError):
    """The checkpoint's classifier head has other shapes than the model's head."""


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None
) -> Path:
    """Write the model's state (parameters and buffers) and ``extra`` to ``path``.

    Why: a trained model is only useful if the next notebook can pick it up.

    Args:
        model: the network whose ``state_dict`` is saved (as CPU tensors).
        path: the file to write; missing parent folders are created. The file is written
            under a temporary name first, so a crash never leaves half a checkpoint.
        extra: plain data to keep alongside (numbers, strings, lists, dicts, tensors), e.g.
            ``{"history": history.to_dict(), "classes": [...]}``.

    Returns:
        The path written, as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": _FORMAT,
        "model_class": type(model).__name__,
        "state_dict": state,
        "extra": dict(extra or {}),
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def load_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    body_only: bool = False,
    head: str | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load the weights in ``path`` (written by ``save_checkpoint``) into ``model``.

    Why: reuse a trained model, or only its body under a new head for another task.

    Args:
        model: the network to load into, with the same architecture as the saved one.
        path: a file written by ``save_checkpoint``.
        body_only: load everything except the head (and auxiliary heads), leaving the model's
            own head untouched; for a model whose head was swapped for another number of classes.
        head: qualified name of the head; None finds it with ``ftlib.find_head``.
        map_location: where tensors are loaded before being copied into the model.

    Returns:
        The ``extra`` dict that was saved with the weights.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a checkpoint written by ``save_checkpoint``.
        HeadMismatchError: the saved head has other shapes or entries (a bias, say) than the
            model's head.
        RuntimeError: the bodies do not match (PyTorch's message lists the differences).
    """
    path = Path(path)
    payload = _read(path, map_location)
    state: dict[str, torch.Tensor] = payload["state_dict"]
    if body_only:
        heads = _head_names(model, head)
        body = {name: t for name, t in state.items() if not _in_any(name, heads)}
        result = model.load_state_dict(body, strict=False)
        missing = [name for name in result.missing_keys if not _in_any(name, heads)]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"the body in {path} does not match {type(model).__name__}: missing "
                f"{missing}, unexpected {result.unexpected_keys}"
            )
    else:
        _check_head(model, state, head, path, payload["model_class"])
        model.load_state_dict(state)
    return payload["extra"]


def checkpoint_extra(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``extra`` dict saved in ``path``, without loading weights into a model.

    Why: a checkpoint's metadata (class names, history) tells you which model to build for it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a checkpoint written by ``save_checkpoint``.
    """
    return _read(Path(path), "cpu")["extra"]


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(
            f"{path} is not a checkpoint written by ftlib.save_checkpoint ({error})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(
            f"{path} is not a checkpoint written by ftlib.save_checkpoint; a bare state_dict "
            "loads with model.load_state_dict(torch.load(path))"
        )
    return payload


def _check_head(
    model: nn.Module, state: dict[str, torch.Tensor], head: str | None, path: Path, saved: str
) -> None:
    """Raise HeadMismatchError when the entries that differ (shape, or present in one only)
    belong to the head."""
    own = model.state_dict()
    differing = [n for n in own if n not in state or state[n].shape != own[n].shape]
    differing += [n for n in state if n not in own]
    if not differing:
        return
    try:
        heads = _head_names(model, head)
    except HeadNotFoundError:
        return  # no head to blame: load_state_dict reports the differences
    for name in differing:
        if _in_any(name, heads):
            if name not in own:
                difference = f"{name} is in the checkpoint ({saved}) but not in the model"
            elif name not in state:
                difference = f"{name} is in the model but not in the checkpoint ({saved})"
            else:
                difference = (
                    f"{name} has shape {tuple(state[name].shape)} in the checkpoint ({saved}) "
                    f"but {tuple(own[name].shape)} in the model"
                )
            raise HeadMismatchError(
                f"the head in {path} does not fit {type(model).__name__}: {difference}. To "
                "reuse the body under the model's own head, pass body_only=True"
            )


def _head_names(model: nn.Module, head: str | None) -> list[str]:
    return [head] if head is not None else [find_head(model), *find_aux_heads(model)]


def _in_any(name: str, prefixes: list[str]) -> bool:
    return any(name.startswith(prefix + ".") for prefix in prefixes)
