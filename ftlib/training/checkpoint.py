"""Save a model's weights to a file and load them back, head and all or body only.

A checkpoint trained for 10 classes does not fit a model with a fresh 5-class head. Loading it
raises ``HeadMismatchError``, which says so and points to ``body_only=True``: load everything but
the head, which is exactly how a fine-tuning run reuses a pretrained body. A checkpoint of
another architecture raises ``ArchitectureMismatchError``, naming both. Every file that cannot
be read (empty, truncated, not a PyTorch file, pickled objects) gets a one-line cause.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftlib._checks import check_materialised, check_model
from ftlib.device import best_device
from ftlib.surgery.heads import HeadNotFoundError, find_aux_heads, find_head, find_heads

_FORMAT = "ftlib.checkpoint/1"


class HeadMismatchError(ValueError):
    """The checkpoint's classifier head has other shapes than the model's head."""


class ArchitectureMismatchError(ValueError):
    """The checkpoint holds another architecture (or configuration) than the model's body."""


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

    Raises:
        TypeError: a value of ``extra`` that ``load_checkpoint`` could not read back.
        ValueError: the model has lazy layers that have not run yet.
        IsADirectoryError: ``path`` is a folder.
    """
    return write_payload(model, path, extra=extra)


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
        ValueError: ``path`` is not a checkpoint written by ``save_checkpoint`` (empty,
            truncated, another kind of file); the message says which.
        HeadMismatchError: the saved head has other shapes or entries (a bias, say) than the
            model's head.
        ArchitectureMismatchError: the bodies do not match (another architecture or
            configuration); the message counts the differences and names the saved class.
    """
    check_model(model, "load_checkpoint")
    if not isinstance(body_only, bool):
        raise TypeError(f"body_only must be True or False, got {body_only!r}")
    path = Path(path)
    if isinstance(map_location, (str, torch.device)):  # an unknown or absent device, said so
        map_location = best_device(map_location)
    payload = read_payload(path, map_location)
    load_weights(model, payload, path, body_only=body_only, head=head)
    return payload["extra"]


def load_weights(
    model: nn.Module,
    payload: dict[str, Any],
    path: Path,
    *,
    body_only: bool = False,
    head: str | None = None,
    head_advice: str = "To reuse the body under the model's own head, pass body_only=True",
) -> None:
    """Load a checkpoint's weights (``read_payload``'s result) into ``model``, checked first.

    Why: a run checkpoint resumed into another model must fail as clearly as
    ``load_checkpoint`` does, not with torch's list of every missing key.

    Raises:
        HeadMismatchError, ArchitectureMismatchError: as for ``load_checkpoint``.
    """
    state: dict[str, torch.Tensor] = payload["state_dict"]
    saved = payload["model_class"]
    heads = _head_names(model, head) if body_only else _head_names_if_any(model, head)
    heads = [head_region(model, name) for name in heads]
    _check_architecture(model, state, heads, path, saved)
    if body_only:
        model.load_state_dict(
            {name: t for name, t in state.items() if not _in_any(name, heads)}, strict=False
        )
    else:
        _check_head(model, state, heads, path, saved, head_advice)
        model.load_state_dict(state)


def head_region(model: nn.Module, head: str) -> str:
    """The largest module around ``head`` whose only parameters are the head's, short of the
    model's top level.

    Why: a head written as ``nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 5))`` under ``fc``
    replaces a checkpoint's plain ``fc`` Linear; its entries (``fc.weight``) are the head's too.
    """
    own = {id(p) for p in model.get_submodule(head).parameters()}
    region = head
    while "." in region:
        parent = region.rsplit(".", 1)[0]
        if any(id(p) not in own for p in model.get_submodule(parent).parameters()):
            break
        region = parent
    return region


def checkpoint_extra(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``extra`` dict saved in ``path``, without loading weights into a model.

    Why: a checkpoint's metadata (class names, history) tells you which model to build for it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a checkpoint written by ``save_checkpoint``.
    """
    return read_payload(Path(path), "cpu")["extra"]


def write_payload(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
    state: dict[str, torch.Tensor] | None = None,
    **more: Any,
) -> Path:
    """Write a checkpoint of ``model`` with ``extra`` and any ``more`` top-level entries.

    Why: a resumable training checkpoint is a weights checkpoint plus the run's state, so
    ``load_checkpoint`` reads both kinds; a LoRA adapter file is one that holds only part of
    the state (``state``: the entries to save; None saves the whole ``state_dict``).
    """
    check_model(model, "save_checkpoint")
    check_materialised(model, "save_checkpoint")
    extra = _loadable_extra(extra)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder; give the checkpoint a file name, e.g. {path / 'model.pt'}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict() if state is None else state
    state = {name: tensor.detach().cpu() for name, tensor in state.items()}
    payload = {
        "format": _FORMAT,
        "model_class": type(model).__name__,
        "state_dict": state,
        "extra": extra,
        **more,
    }
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)  # only left when writing failed
    return path


def _loadable_extra(extra: Any) -> dict[str, Any]:
    """``extra`` as a dict, each value checked to load back under ``weights_only=True``.

    Why: ``load_checkpoint`` reads files without running pickled code, so a value it cannot
    read (a NumPy array, a Path, a dataclass) must be refused when saving, not discovered when
    the file is needed.

    Raises:
        TypeError: ``extra`` is not a dict, or one of its values could not be read back.
    """
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a dict, got {type(extra).__name__}")
    for key, value in extra.items():
        buffer = io.BytesIO()
        try:
            torch.save(value, buffer)
            buffer.seek(0)
            torch.load(buffer, weights_only=True)
        except Exception:  # pickling and safe loading raise many kinds
            raise TypeError(
                f"extra[{key!r}] ({type(value).__name__}) could not be read back by "
                "load_checkpoint, which loads only numbers, strings, lists, tuples, dicts and "
                "tensors (weights_only=True). Convert it first, e.g. str(path), array.tolist(), "
                "float(value), dataclasses.asdict(obj)"
            ) from None
    return dict(extra)


def read_payload(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Everything in a checkpoint file, or an error with a one-line cause and what to do.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is empty, truncated, not a PyTorch file, holds pickled objects
            rather than weights, or was not written by ``save_checkpoint``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch.load raises many kinds (EOFError, KeyError, OSError, ...)
        raise ValueError(_unreadable(path, error)) from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(
            f"{path} is not a checkpoint written by ftlib.save_checkpoint; a bare state_dict "
            "loads with model.load_state_dict(torch.load(path))"
        )
    return payload


def _unreadable(path: Path, error: Exception) -> str:
    """Why ``torch.load`` could not read ``path``, from its first bytes, its size and the error."""
    size = path.stat().st_size
    with path.open("rb") as file:
        start = file.read(4)
    pytorch_file = start == b"PK\x03\x04" or start[:1] == b"\x80"  # zip, or legacy pickle
    if size == 0:
        cause = "is empty (0 bytes)"
    elif not pytorch_file:
        cause = f"is not a PyTorch file (it starts with {start!r})"
    elif "Weights only load failed" in str(error):
        return (
            f"{path} holds pickled Python objects, not only weights (a model saved whole with "
            "torch.save(model)?); if you trust its source, load it with "
            "torch.load(path, weights_only=False) and save it again with ftlib.save_checkpoint"
        )
    else:
        cause = f"is a damaged or truncated PyTorch file ({size:,} bytes)"
    return (
        f"{path} {cause}, not a checkpoint written by ftlib.save_checkpoint. Write it again "
        "(an interrupted copy or download leaves such files), or pick the right file"
    )


def _check_architecture(
    model: nn.Module, state: dict[str, torch.Tensor], heads: list[str], path: Path, saved: str
) -> None:
    """Raise ArchitectureMismatchError when entries outside the heads differ (names, shapes)."""
    own = {name: t.shape for name, t in model.state_dict().items() if not _in_any(name, heads)}
    theirs = {name: t.shape for name, t in state.items() if not _in_any(name, heads)}
    missing, unexpected = sorted(own.keys() - theirs), sorted(theirs.keys() - own)
    reshaped = [name for name in own if name in theirs and own[name] != theirs[name]]
    if not (missing or unexpected or reshaped):
        return
    name = type(model).__name__
    held = f"{saved}, not {name}" if saved != name else f"{name} of another configuration"
    differences = [
        f"{len(missing)} of the model's entries are missing (e.g. {_some(missing)})",
        f"{len(unexpected)} of the checkpoint's are not in the model (e.g. {_some(unexpected)})",
    ]
    if reshaped:
        first = reshaped[0]
        differences.append(
            f"{len(reshaped)} have other shapes (e.g. {first}: {tuple(theirs[first])} saved, "
            f"{tuple(own[first])} in the model)"
        )
    raise ArchitectureMismatchError(
        f"{path} holds {held}: {'; '.join(differences)}. Build the model the checkpoint was "
        f"saved from ({saved}) before loading it"
    )


def _some(names: list[str]) -> str:
    return ", ".join(names[:2]) + (", ..." if len(names) > 2 else "") if names else "none"


def _check_head(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    heads: list[str],
    path: Path,
    saved: str,
    advice: str,
) -> None:
    """Raise HeadMismatchError when a head entry differs (shape, or present in one only)."""
    own = model.state_dict()
    differing = [n for n in own if n not in state or state[n].shape != own[n].shape]
    differing += [n for n in state if n not in own]
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
                f"the head in {path} does not fit {type(model).__name__}: {difference}. {advice}"
            )


def _head_names_if_any(model: nn.Module, head: str | None) -> list[str]:
    """The head names, or none for a model without a head (then all entries are body)."""
    try:
        return _head_names(model, head)
    except HeadNotFoundError:
        return []


def _head_names(model: nn.Module, head: str | None) -> list[str]:
    """The named head (checked to be a layer of the model), or the heads ftlib finds."""
    if head is not None:
        return find_heads(model, head=head)
    return [find_head(model), *find_aux_heads(model)]


def _in_any(name: str, prefixes: list[str]) -> bool:
    return any(name.startswith(prefix + ".") for prefix in prefixes)
