"""Fine-tuning recipes built on ``fit``: the two-phase ``fine_tune`` and gradual unfreezing.

Both train a model whose head was just swapped for the new classes. A fresh head is random, so
its first gradients are large and random too; sent into an unfrozen body, they would wreck the
pretrained features. Training the head first with the body frozen (``fine_tune``), or thawing
the body one block at a time from the top (``gradual_unfreeze``, ULMFiT's recipe) avoids that.

Each phase or stage is one ``fit`` call with a new optimizer (``default_optimizer``: the body
at ``lr``, the head ``head_lr_mult`` times faster) and, by default, a one-cycle schedule stepped
every optimizer step. The histories are joined into one, epochs counted through.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ftlib._checks import as_count
from ftlib.surgery.freezing import freeze, top_level_blocks, unfreeze
from ftlib.surgery.heads import all_heads
from ftlib.surgery.lora import LoRALayer
from ftlib.surgery.zoo import layer_outputs
from ftlib.training.arguments import check_run_inputs, check_topk_fits
from ftlib.training.batches import check_target_range, listed_targets
from ftlib.training.distributed import batches_per_process
from ftlib.training.history import History
from ftlib.training.loop import DEFAULT_WEIGHT_DECAY, default_optimizer, fit
from ftlib.training.optim import HEAD_LR_MULT

FREEZE_EPOCHS = 1
"""Epochs of head-only training before the body is unfrozen (fastai's default as well)."""

FASTAI_DEFAULTS = {
    "freeze_epochs": 1,
    "base_lr": 2e-3,
    "lr_mult": 100,
    "pct_start": 0.3,
    "div": 5.0,
}
"""fastai's ``Learner.fine_tune`` defaults, for comparison. fastai trains the head at
``base_lr`` for ``freeze_epochs`` (one-cycle, peaking late), then halves ``base_lr`` and trains
everything with rates spread from ``base_lr / 2 / lr_mult`` (first layers) to ``base_lr / 2``
(head), one-cycle again. ftlib's ``fine_tune`` keeps the freeze epoch and the one-cycle
schedule, and uses the ratio the course measures: the head 10 times the body
(``head_lr_mult=10``; pass 100 for fastai's ratio), one body rate, no halving between phases."""

_SET_BY_RECIPE = (
    "checkpoint",
    "epochs",
    "lr",
    "optimizer",
    "resume",
    "scheduler",
    "scheduler_step",
)


def fine_tune(
    model: nn.Module,
    train_loader: Iterable[Any],
    *,
    epochs: int,
    freeze_epochs: int = FREEZE_EPOCHS,
    lr: float = 1e-3,
    head_lr_mult: float = HEAD_LR_MULT,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    one_cycle: bool = True,
    head: str | Sequence[str] | None = None,
    **fit_options: Any,
) -> History:
    """Train the new head with the body frozen, then unfreeze and train everything.

    Why: the head must first learn to use the pretrained features before the body may adapt
    to the new task, or the head's early, random gradients would disturb those features.

    Args:
        model: a pretrained model with a new head (``ftlib.swap_head``); trained in place and
            left fully unfrozen.
        train_loader: as for ``fit``.
        epochs: epochs of the second phase (everything trains), at least 1.
        freeze_epochs: epochs of the first phase (head only); 0 skips it.
        lr: the body's learning rate in the second phase.
        head_lr_mult: the head learns at ``lr * head_lr_mult`` in both phases.
        weight_decay: weight decay on weight matrices (not biases, not norms).
        one_cycle: a one-cycle schedule (``torch.optim.lr_scheduler.OneCycleLR``, per step) in
            each phase; False keeps the rates constant.
        head: the head's name(s); None takes ``ftlib.all_heads(model)``.
        **fit_options: passed to ``fit`` (``val_loader``, ``device``, ``amp``, ``accumulate``,
            ``early_stopping`` within each phase, ``progress``, ...); not those the recipe
            sets itself (optimizer, scheduler, scheduler_step, epochs, lr), nor run
            checkpoints (checkpoint, resume), which cannot resume several ``fit`` calls.

    Returns:
        One ``History``: the first ``freeze_epochs`` records are the head phase.

    Raises:
        ValueError: ``freeze_epochs`` is not an int of at least 0, a one-cycle schedule for a
            loader without a length, an option the recipe sets itself, a model with LoRA
            adapters; and whatever ``fit`` raises, checked before the recipe freezes anything.
    """
    heads = _check_recipe("fine_tune", model, train_loader, head, fit_options)
    epochs = as_count(epochs, "epochs", minimum=1)
    freeze_epochs = as_count(freeze_epochs, "freeze_epochs", minimum=0)
    phase = _Phase(model, train_loader, lr, head_lr_mult, weight_decay, one_cycle, fit_options)
    history = History()
    if freeze_epochs:
        freeze(model)
        unfreeze(model, heads)
        phase.train(freeze_epochs, history)
    unfreeze(model)
    return phase.train(epochs, history)


def gradual_unfreeze(
    model: nn.Module,
    train_loader: Iterable[Any],
    *,
    epochs_per_stage: int = 1,
    stages: int | None = None,
    lr: float = 1e-3,
    head_lr_mult: float = HEAD_LR_MULT,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    one_cycle: bool = True,
    head: str | Sequence[str] | None = None,
    **fit_options: Any,
) -> History:
    """Train the head, then unfreeze one more body block from the top in every stage.

    Why: ULMFiT's gradual unfreezing (Howard & Ruder 2018): the layers nearest the head are the
    most task-specific and change first; the general early layers join last, when the
    gradients reaching them are no longer those of a random head.

    Args:
        model: a pretrained model with a new head; trained in place. The body blocks are
            ``ftlib.top_level_blocks(model)`` without the heads. After the last stage the
            blocks not yet reached stay frozen.
        train_loader: as for ``fit``.
        epochs_per_stage: epochs of every stage, at least 1.
        stages: how many stages to run, at least 1; stage 1 trains the head only, stage
            ``s`` the head and the last ``s - 1`` body blocks. None runs one per block plus
            the head stage, ending with everything trainable.
        lr, head_lr_mult, weight_decay, one_cycle, head, **fit_options: as for ``fine_tune``.

    Returns:
        One ``History`` over all stages, ``epochs_per_stage`` records each.

    Raises:
        ValueError: ``stages`` is not between 1 and the number of body blocks plus one, or an
            option the recipe sets itself; and whatever ``fit`` raises.
    """
    heads = _check_recipe("gradual_unfreeze", model, train_loader, head, fit_options)
    epochs_per_stage = as_count(epochs_per_stage, "epochs_per_stage", minimum=1)
    head_ids = {id(module) for module in heads}
    body = [block for _, block in top_level_blocks(model) if not _holds(block, head_ids)]
    stages = len(body) + 1 if stages is None else as_count(stages, "stages", minimum=1)
    if not stages <= len(body) + 1:
        raise ValueError(
            f"stages must be an int from 1 to {len(body) + 1} (the head, then the "
            f"{len(body)} body blocks of {type(model).__name__}), got {stages!r}"
        )
    phase = _Phase(model, train_loader, lr, head_lr_mult, weight_decay, one_cycle, fit_options)
    history = History()
    for stage in range(stages):
        freeze(model)
        unfreeze(model, [*heads, *body[len(body) - stage :]])
        phase.train(epochs_per_stage, history)
    return history


class _Phase:
    """One ``fit`` call of a recipe, with a fresh optimizer and schedule for what trains now."""

    def __init__(
        self,
        model: nn.Module,
        train_loader: Iterable[Any],
        lr: float,
        head_lr_mult: float,
        weight_decay: float,
        one_cycle: bool,
        fit_options: dict[str, Any],
    ) -> None:
        self.model, self.train_loader, self.fit_options = model, train_loader, fit_options
        self.lr, self.head_lr_mult, self.weight_decay = lr, head_lr_mult, weight_decay
        self.one_cycle = one_cycle

    def train(self, epochs: int, history: History) -> History:
        """Fit for ``epochs`` and append the records to ``history``, epochs counted through."""
        optimizer = default_optimizer(
            self.model, lr=self.lr, weight_decay=self.weight_decay, head_lr_mult=self.head_lr_mult
        )
        schedule = self._schedule(optimizer, epochs) if self.one_cycle else None
        part = fit(
            self.model,
            self.train_loader,
            epochs=epochs,
            optimizer=optimizer,
            scheduler=schedule,
            scheduler_step="step",
            **self.fit_options,
        )
        done = len(history)
        history.epochs.extend({**record, "epoch": done + record["epoch"]} for record in part.epochs)
        return history

    def _schedule(self, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
        try:
            batches = batches_per_process(self.train_loader)
        except TypeError:
            raise ValueError(
                "a one-cycle schedule needs to know the steps per epoch, but the loader has no "
                "length; pass one_cycle=False, or a loader over a map-style dataset"
            ) from None
        epochs = as_count(epochs, "epochs", minimum=1)
        accumulate = as_count(self.fit_options.get("accumulate", 1), "accumulate", minimum=1)
        steps = epochs * math.ceil(batches / accumulate)
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=steps)


def _holds(block: nn.Module, module_ids: set[int]) -> bool:
    return any(id(module) in module_ids for module in block.modules())


def _check_recipe(
    function: str,
    model: nn.Module,
    train_loader: Any,
    head: str | Sequence[str] | None,
    fit_options: dict[str, Any],
) -> list[nn.Module]:
    """What ``fit`` would refuse, and a LoRA model, refused before the recipe freezes anything.

    Returns:
        The heads (``all_heads``); their outputs stand for the number of classes in the checks
        ``fit`` could make only after a forward pass (``topk``, the labels the datasets list).
    """
    _check_options(fit_options)
    topk, _ = check_run_inputs(function, model, train_loader, **fit_options)
    heads = all_heads(model, head)
    classes = layer_outputs(heads[0])
    if fit_options.get("topk") is not None:
        check_topk_fits(topk, classes)
    for where, targets in listed_targets(train_loader, fit_options.get("val_loader")):
        check_target_range(targets, classes, where=where)
    adapted = [name for name, module in model.named_modules() if isinstance(module, LoRALayer)]
    if adapted:
        raise ValueError(
            f"{type(model).__name__} has LoRA adapters ({', '.join(adapted[:3])}"
            f"{', ...' if len(adapted) > 3 else ''}), whose base weights must stay frozen, but "
            f"{function} unfreezes the body; train the adapters and the head with fit, or "
            "merge them first (ftlib.merge_lora) to fine-tune the whole model"
        )
    return heads


def _check_options(fit_options: dict[str, Any]) -> None:
    clashing = sorted(set(fit_options) & set(_SET_BY_RECIPE))
    if clashing:
        raise ValueError(
            f"leave out {', '.join(clashing)}: the recipe runs one fit call per phase, each "
            "with its own optimizer and schedule (set lr, head_lr_mult, weight_decay and "
            "one_cycle instead), so a run checkpoint could not resume it"
        )
