"""Resumable training: everything a run needs to continue as if it had never stopped.

Weights alone restart a run with a fresh optimizer (Adam's moments lost), the learning-rate
schedule back at its start and new random draws. A run checkpoint keeps the model, the
optimizer, the scheduler, the gradient scaler, the epoch, the history, early stopping's best
weights, and the random states (Python, NumPy, PyTorch CPU and CUDA, the loaders' generators):
``fit(resume=path)`` then trains the remaining epochs exactly as the uninterrupted run would
have. It is an ordinary ftlib checkpoint too: ``load_checkpoint(model, path)`` loads its weights
and ``checkpoint_extra(path)`` gives ``{"epoch": ..., "history": ...}``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ftlib.training.checkpoint import load_weights, read_payload, write_payload
from ftlib.training.early_stopping import Watch
from ftlib.training.history import History


@dataclass(frozen=True)
class RunParts:
    """The objects of one ``fit`` call whose state a run checkpoint keeps."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    scaler: torch.amp.GradScaler
    watch: Watch | None
    loaders: tuple[Any, ...]


def save_run(
    path: str | os.PathLike[str], parts: RunParts, history: History, stopped: bool
) -> Path:
    """Write a run checkpoint after the last epoch of ``history``; ``stopped``: early stopping
    ended the run there.

    Returns:
        The path written.
    """
    epoch = len(history)
    run = {
        "epoch": epoch,
        "optimizer": parts.optimizer.state_dict(),
        "optimizer_class": type(parts.optimizer).__name__,
        "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
        "scheduler_class": type(parts.scheduler).__name__,
        "scaler": parts.scaler.state_dict(),
        "early_stopping": parts.watch.state_dict() if parts.watch is not None else None,
        "stopped": stopped,
        "random": _random_states(parts.loaders),
    }
    extra = {"epoch": epoch, "history": history.to_dict()}
    return write_payload(parts.model, path, extra=extra, run=run)


def load_run(path: str | os.PathLike[str], parts: RunParts) -> tuple[History, bool]:
    """Restore a run written by ``save_run`` into freshly built parts.

    Returns:
        The run's history, and whether early stopping had ended it.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is a weights-only checkpoint (no run state); the run used a
            scheduler, or early stopping, where this one does not (or the other way round);
            another optimizer or scheduler class, or other parameter groups (another freezing).
        ArchitectureMismatchError, HeadMismatchError: the model is not the run's.
    """
    path = Path(path)
    payload = read_payload(path)
    run = payload.get("run")
    if run is None:
        raise ValueError(
            f"{path} holds weights only, not a run to resume (it was written by "
            "save_checkpoint, not fit(checkpoint=...)); load it with ftlib.load_checkpoint and "
            "start a new run"
        )
    _check_same_parts(path, "a scheduler", run["scheduler"], parts.scheduler)
    _check_same_parts(path, "early stopping", run["early_stopping"], parts.watch)
    _check_same_class(path, "optimizer", run.get("optimizer_class"), parts.optimizer)
    if parts.scheduler is not None:
        _check_same_class(path, "scheduler", run.get("scheduler_class"), parts.scheduler)
    load_weights(
        parts.model,
        payload,
        path,
        head_advice="Resume into the model the run trained, with as many classes",
    )
    try:
        parts.optimizer.load_state_dict(run["optimizer"])
    except ValueError as error:  # torch: "loaded state dict has a different number of ..."
        saved = [len(group["params"]) for group in run["optimizer"]["param_groups"]]
        now = [len(group["params"]) for group in parts.optimizer.param_groups]
        raise ValueError(
            f"the optimizer's parameter groups differ from those of the run in {path} (sizes "
            f"{saved} saved, {now} now); freeze the same layers and build the optimizer as in "
            "the run you are continuing"
        ) from error
    if parts.scheduler is not None:
        parts.scheduler.load_state_dict(run["scheduler"])
    parts.scaler.load_state_dict(run["scaler"])
    if parts.watch is not None:
        parts.watch.load_state_dict(run["early_stopping"])
    _restore_random_states(run["random"], parts.loaders)
    return History(**payload["extra"]["history"]), run["stopped"]


def _check_same_parts(path: Path, part: str, saved: Any, now: Any) -> None:
    if (saved is None) != (now is None):
        had, has = ("had", "has none") if now is None else ("had none", "has one")
        raise ValueError(
            f"the run in {path} {had} {part} and this fit call {has}; resume with the same "
            "options as the run you are continuing"
        )


def _check_same_class(path: Path, part: str, saved: str | None, now: Any) -> None:
    if saved is not None and saved != type(now).__name__:
        raise ValueError(
            f"the run in {path} used the {part} {saved} and this fit call has "
            f"{type(now).__name__}; resume with the same {part} as the run you are continuing"
        )


def _generators(loaders: Iterable[Any]) -> list[torch.Generator | None]:
    return [getattr(loader, "generator", None) for loader in loaders]


def _random_states(loaders: Iterable[Any]) -> dict[str, Any]:
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loaders": [g.get_state() if g is not None else None for g in _generators(loaders)],
    }


def _restore_random_states(states: dict[str, Any], loaders: Iterable[Any]) -> None:
    version, internal, rest = states["python"][0], states["python"][1], states["python"][2]
    random.setstate((version, tuple(internal), rest))
    name, keys, *numpy_rest = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *numpy_rest))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    for generator, state in zip(_generators(loaders), states["loaders"], strict=True):
        if generator is not None and state is not None:
            generator.set_state(state)
