"""The checks ``fit``, ``evaluate`` and ``predict`` make of their arguments before anything runs.

Why: a wrong argument that reaches the loop fails deep inside torch (``tuple index out of
range`` for an optimizer class, ``Boolean value of Tensor`` for a loss class) or, worse, trains
nothing and says nothing (an optimizer built on another model's parameters). Each check here
names the argument, what it got, and what to pass instead, before a weight changes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ftlib._checks import as_count, as_rate, check_materialised, check_model
from ftlib.training.early_stopping import EarlyStopping
from ftlib.training.performance import Performance

DEFAULT_TOPK = (1, 5)
"""The top-k accuracies recorded when ``topk`` is not given (top-5 is 1.0 with 5 classes or
fewer)."""


def check_loader(loader: Any, role: str) -> None:
    """Refuse a dataset, a tensor or a name where an iterable of batches belongs.

    Raises:
        TypeError: naming what was passed and how to wrap it in a DataLoader.
    """
    if isinstance(loader, Dataset) and not isinstance(loader, torch.utils.data.IterableDataset):
        raise TypeError(
            f"{role} is a {type(loader).__name__}, a dataset of single samples, not a loader of "
            f"batches; wrap it: torch.utils.data.DataLoader(dataset, batch_size=32"
            f"{', shuffle=True' if role == 'train_loader' else ''})"
        )
    if isinstance(loader, torch.Tensor):
        raise TypeError(
            f"{role} is a tensor of shape {tuple(loader.shape)}, not a loader of batches; wrap "
            "it: DataLoader(TensorDataset(inputs, targets), batch_size=32), or [(inputs, "
            "targets)] for a single batch"
        )
    if isinstance(loader, (str, bytes, os.PathLike)) or not isinstance(loader, Iterable):
        raise TypeError(
            f"{role} must be an iterable of batches such as a torch DataLoader, got {loader!r} "
            f"({type(loader).__name__}); for a folder of images, DataLoader(ftlib.data.image_folder"
            f"(root, transform=...), batch_size=32)"
        )


def check_instance(value: Any, role: str, kind: type | tuple[type, ...], example: str) -> None:
    """Refuse a class (or anything else) where an instance of ``kind`` belongs.

    Raises:
        TypeError: naming what was passed and showing how to build the instance.
    """
    if value is None or isinstance(value, kind):
        return
    if isinstance(value, type):
        raise TypeError(
            f"{role} is the class {value.__name__}, not an instance of it; build it first: "
            f"{role}={example}"
        )
    raise TypeError(
        f"{role} must be {_kind_name(kind)}, got {value!r} ({type(value).__name__}); "
        f"for example {role}={example}"
    )


def check_loss_fn(loss_fn: Any) -> None:
    """Refuse a loss class (``nn.CrossEntropyLoss``), a loss that sums or keeps one value per
    sample (the history and the step size assume the batch mean), or anything not callable."""
    if isinstance(loss_fn, type) or (loss_fn is not None and not callable(loss_fn)):
        check_instance(loss_fn, "loss_fn", nn.Module, "nn.CrossEntropyLoss()")
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction not in ("mean", "batchmean"):
        raise ValueError(
            f"loss_fn has reduction={reduction!r}, but fit needs the batch's mean loss (the "
            "history and the learning rate assume it); use reduction='mean', the default"
        )


def check_run_inputs(
    function: str,
    model: Any,
    train_loader: Any,
    *,
    val_loader: Any = None,
    loss_fn: Any = None,
    topk: Any = None,
    early_stopping: Any = None,
    performance: Any = None,
    **_: Any,
) -> tuple[tuple[int, ...], Performance]:
    """The checks of ``fit`` that need no optimizer or device, for every entry point that
    trains: run before anything changes (``fine_tune`` freezes the body before it calls ``fit``).

    Returns:
        The top-k values (``DEFAULT_TOPK`` for None) and the ``Performance`` settings.
    """
    check_model(model, function)
    check_materialised(model, function)
    check_loader(train_loader, "train_loader")
    if val_loader is not None:
        check_loader(val_loader, "val_loader")
    check_loss_fn(loss_fn)
    topk = check_topk(DEFAULT_TOPK if topk is None else topk)
    check_early_stopping(early_stopping, has_val_loader=val_loader is not None, topk=topk)
    return topk, check_performance(performance)


def check_counts(*, epochs: Any, accumulate: Any, clip_grad_norm: float | None) -> tuple[int, int]:
    """``(epochs, accumulate)`` as ints of at least 1; ``clip_grad_norm`` positive or None.

    Raises:
        ValueError: naming the argument and the value.
    """
    epochs = as_count(epochs, "epochs", minimum=1)
    accumulate = as_count(accumulate, "accumulate (1: step after every batch)", minimum=1)
    if clip_grad_norm is not None:
        as_rate(clip_grad_norm, "clip_grad_norm (None: no clipping)", positive=True)
    return epochs, accumulate


def check_topk(topk: Any) -> tuple[int, ...]:
    """The top-k values as a tuple of ints of at least 1, or a ValueError.

    Why: ``topk=5`` reads as "top-5 accuracy" but is no sequence; say so instead of failing to
    iterate over it.
    """
    if isinstance(topk, int) or (isinstance(topk, torch.Tensor) and topk.ndim == 0):
        raise ValueError(
            f"topk must be a sequence of k, got the single number {topk!r}; use topk=({topk},) "
            "for one accuracy, topk=(1, 5) for two, or topk=() for none"
        )
    if isinstance(topk, (str, bytes)) or not isinstance(topk, Sequence):
        raise ValueError(f"topk must be a sequence of k such as (1, 5), got {topk!r}")
    return tuple(as_count(k, f"each k in topk={topk!r}", minimum=1) for k in topk)


def check_topk_fits(topk: Sequence[int], num_classes: int) -> None:
    """Refuse a k above the number of classes: its accuracy would be 1.0 whatever the model did.

    Raises:
        ValueError: naming the k and the number of outputs.
    """
    too_large = [k for k in topk if k > num_classes]
    if too_large:
        fitting = tuple(k for k in topk if k <= num_classes) or (1,)
        raise ValueError(
            f"topk={tuple(topk)} asks for top-{too_large[0]} accuracy of a model with "
            f"{num_classes} outputs, which is 1.0 whatever it predicts; use k of at most "
            f"{num_classes}, e.g. topk={fitting}"
        )


def check_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Refuse an optimizer that holds none of the model's trainable parameters; warn about
    trainable parameters it leaves out.

    Why: an optimizer built on another model, or before ``swap_head`` replaced the head,
    steps tensors the model no longer uses, and training changes nothing it can see.

    Raises:
        ValueError: the optimizer and the model share no trainable parameter.
    """
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not any(id(p) in held for _, p in trainable):
        raise ValueError(
            f"the optimizer holds none of the trainable parameters of {type(model).__name__}, "
            "so fit would change nothing; build it on this model after any swap_head, e.g. "
            "torch.optim.AdamW(model.parameters()) or ftlib.default_optimizer(model, lr=1e-3)"
        )
    left_out = [name for name, p in trainable if id(p) not in held]
    if left_out:
        warnings.warn(
            f"{len(left_out)} trainable parameters of {type(model).__name__} are not in the "
            f"optimizer and will not learn (e.g. {', '.join(left_out[:3])}); build the "
            "optimizer after swap_head, or freeze what should not learn",
            stacklevel=3,
        )


def check_scheduler(
    scheduler: Any, optimizer: torch.optim.Optimizer | None, *, step_per_batch: bool
) -> None:
    """Refuse a scheduler class, a scheduler of another optimizer, or one without ours.

    ``optimizer`` is the one passed to ``fit`` (None: fit builds its default).

    Raises:
        TypeError: a class, or an object without ``step``.
        ValueError: the scheduler drives another optimizer, or ``ReduceLROnPlateau`` per step.
    """
    if scheduler is None:
        return
    if isinstance(scheduler, type) or not callable(getattr(scheduler, "step", None)):
        check_instance(
            scheduler,
            "scheduler",
            torch.optim.lr_scheduler.LRScheduler,
            "torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)",
        )
    drives = getattr(scheduler, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            "a scheduler needs the optimizer it schedules, but fit was given none (it would "
            "build its own); build both and pass both: optimizer = ftlib.default_optimizer("
            "model, lr=1e-3); fit(..., optimizer=optimizer, scheduler=StepLR(optimizer, 5))"
        )
    if drives is not None and drives is not optimizer:
        raise ValueError(
            "the scheduler drives another optimizer than the one passed to fit, so the "
            "learning rate fit uses would never change; build the scheduler on fit's optimizer"
        )
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and step_per_batch:
        raise ValueError(
            "ReduceLROnPlateau reacts to an epoch's validation loss, so it steps per epoch; "
            "use scheduler_step='epoch' with it"
        )


def check_schedule_length(
    scheduler: Any,
    *,
    epochs: int,
    steps_per_epoch: int | None,
    step_per_batch: bool,
    may_continue: bool = False,
) -> None:
    """Compare the length of a OneCycleLR or CosineAnnealingLR schedule with the run's.

    Why: torch stops a OneCycleLR that is too short midway with an error, a cosine shorter than
    the run climbs back up, and a schedule longer than the run ends before the rate comes down;
    the last two train on without a word.

    Raises:
        ValueError: a OneCycleLR with fewer steps than the run takes.

    Warns:
        UserWarning: a OneCycleLR longer than the run, a CosineAnnealingLR of another length;
            not for a longer schedule when ``may_continue`` (a run that writes or resumes a
            run checkpoint may be one part of a longer one).
    """
    one_cycle = isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    cosine = isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    if not (one_cycle or cosine) or (step_per_batch and steps_per_epoch is None):
        return
    needed = epochs * steps_per_epoch if step_per_batch else epochs
    unit = "optimizer steps" if step_per_batch else "epochs"
    length, name = (
        (scheduler.total_steps, "total_steps") if one_cycle else (scheduler.T_max, "T_max")
    )
    if length == needed or (length > needed and may_continue):
        return
    size = f"{name}={needed}" + (
        f" (epochs={epochs} x {steps_per_epoch} optimizer steps per epoch)"
        if step_per_batch
        else ""
    )
    kind = type(scheduler).__name__
    if one_cycle and length < needed:
        raise ValueError(
            f"the OneCycleLR schedule has {length} steps but this run takes {needed} {unit}; "
            f"build it with {size}"
        )
    effect = (
        "climbs back up after its minimum"
        if length < needed
        else "never comes down to its final value"
    )
    warnings.warn(
        f"the {kind} schedule is {length} {unit} long but the run takes {needed}, so the rate "
        f"{effect}; build it with {size}, or set scheduler_step to match",
        stacklevel=3,
    )


def optimizer_steps_per_epoch(loader: Any, accumulate: int) -> int | None:
    """How many optimizer steps one epoch over ``loader`` takes (None: its length is unknown)."""
    try:
        return math.ceil(len(loader) / accumulate)
    except TypeError:
        return None


def check_early_stopping(
    rule: EarlyStopping | None, *, has_val_loader: bool, topk: Sequence[int]
) -> None:
    """Refuse a rule that watches a key this run will never record.

    Raises:
        TypeError: the class was passed instead of an instance.
        ValueError: the key is not one fit records with these options, listing those it does.
    """
    check_instance(rule, "early_stopping", EarlyStopping, "ftlib.EarlyStopping(patience=3)")
    if rule is None:
        return
    keys = recorded_keys(topk, has_val_loader=has_val_loader)
    if rule.monitor in keys:
        return
    if rule.monitor.startswith("val_") and not has_val_loader:
        raise ValueError(
            f"early stopping watches {rule.monitor!r}, which needs a val_loader; pass "
            "fit(..., val_loader=...) or monitor a train_ key"
        )
    raise ValueError(
        f"early stopping watches {rule.monitor!r}, which this run does not record; "
        f"it records {keys}"
    )


def recorded_keys(topk: Sequence[int], *, has_val_loader: bool) -> list[str]:
    """The metrics of each epoch's history record (besides ``epoch`` and ``seconds``)."""
    prefixes = ["train_", "val_"] if has_val_loader else ["train_"]
    return [p + m for p in prefixes for m in ["loss", *(f"top{k}" for k in topk)]]


def check_performance(performance: Any) -> Performance:
    """``performance`` as a ``Performance`` (None: the defaults)."""
    check_instance(performance, "performance", Performance, "ftlib.Performance(channels_last=True)")
    return performance if performance is not None else Performance()


def check_checkpoint_path(path: str | os.PathLike[str] | None, role: str) -> None:
    """Refuse a checkpoint path that is a folder, before the first epoch's work is lost to it."""
    if path is not None and Path(path).is_dir():
        raise ValueError(
            f"{role}={str(path)!r} is a folder; give a file path such as "
            f"{str(Path(path) / 'run.pt')!r}"
        )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(f"a {k.__module__.split('.')[0]} {k.__name__}" for k in kinds)
