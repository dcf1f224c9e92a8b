"""The training loop every lesson reuses: ``fit``, ``evaluate`` and ``predict``.

``fit`` is the loop you would write by hand::

    for epoch in range(epochs):
        model.train()
        for inputs, targets in train_loader:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

and with the same seed it computes exactly what that loop computes, bit for bit. Around it is
what a real run needs: ftlib's optimizer recipe by default, targets checked before they reach
the loss, a stop with a clear error when the loss turns NaN, mixed precision, gradient clipping
and accumulation, schedulers stepped per epoch or per step, early stopping, resumable
checkpoints, torchrun, a progress bar, and a ``History`` of per-epoch numbers returned as data.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ftlib._checks import check_model
from ftlib._choice import Choice
from ftlib.device import autocast, best_device, grad_scaler, to_device
from ftlib.metrics import TopkCounts
from ftlib.surgery.heads import HeadNotFoundError, all_heads
from ftlib.training import distributed
from ftlib.training.arguments import (
    DEFAULT_TOPK,
    check_checkpoint_path,
    check_counts,
    check_instance,
    check_loader,
    check_loss_fn,
    check_optimizer,
    check_run_inputs,
    check_schedule_length,
    check_scheduler,
    check_topk,
    optimizer_steps_per_epoch,
    recorded_keys,
)
from ftlib.training.batches import (
    LossFn,
    batch_loss,
    batches,
    call_model,
    check_target_range,
    inputs_of,
    listed_targets,
    split_outputs,
)
from ftlib.training.early_stopping import EarlyStopping, Watch
from ftlib.training.history import History
from ftlib.training.optim import HEAD_LR_MULT, param_groups
from ftlib.training.performance import (
    AmpSetting,
    Performance,
    compiled,
    resolve_amp,
    use_layout,
)
from ftlib.training.progress import postfix, progress_bar
from ftlib.training.resume import RunParts, load_run, save_run
from ftlib.training.steps import NonFiniteLossError, OptimizerSteps, step_scheduler

DEFAULT_LR = 1e-3
"""``fit``'s learning rate of the body when no ``lr`` is given: AdamW's own default."""

DEFAULT_WEIGHT_DECAY = 0.01
"""Weight decay of the default optimizer on weight matrices: AdamW's own default."""

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_WEIGHT_DECAY",
    "History",
    "NonFiniteLossError",
    "SchedulerStep",
    "default_optimizer",
    "evaluate",
    "fit",
    "predict",
]


class SchedulerStep(Choice):
    """When ``fit`` steps the learning-rate scheduler.

    EPOCH ("epoch"): once after every epoch (StepLR, CosineAnnealingLR over epochs,
    ReduceLROnPlateau). STEP ("step"): after every optimizer step (OneCycleLR, warm-up, cosine
    over steps; size them with ``epochs * ceil(len(train_loader) / accumulate)`` steps).
    """

    EPOCH = "epoch"
    STEP = "step"


def default_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    head_lr_mult: float = HEAD_LR_MULT,
) -> torch.optim.AdamW:
    """The optimizer ``fit`` uses when given none: ftlib's fine-tuning recipe.

    Why: a fresh head must move far and a pretrained body little, and decay belongs on weight
    matrices only; this is ``ftlib.param_groups``, the recipe the lessons teach.

    Returns:
        AdamW over ``param_groups(model, lr=lr, weight_decay=weight_decay)``: the body at
        ``lr``, the classifier head and any auxiliary heads at ``head_lr_mult * lr`` (10x),
        no weight decay on biases and normalisation parameters, frozen parameters left out. A
        model without a recognisable head trains every parameter at ``lr``.
    """
    try:
        heads = all_heads(model)
    except HeadNotFoundError:
        heads = []
    groups = param_groups(model, heads, lr=lr, weight_decay=weight_decay, head_lr_mult=head_lr_mult)
    return torch.optim.AdamW(groups)


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    loss_fn: LossFn | None = None,
    val_loader: Iterable[Any] | None = None,
    device: str | torch.device | None = None,
    amp: AmpSetting = True,
    clip_grad_norm: float | None = None,
    accumulate: int = 1,
    topk: Sequence[int] | None = None,
    scheduler: Any | None = None,
    scheduler_step: SchedulerStep | str = SchedulerStep.EPOCH,
    early_stopping: EarlyStopping | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    performance: Performance | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``.

    Why: one loop for every fine-tuning state; what is frozen decides what learns, because only
    parameters with ``requires_grad=True`` are optimised.

    Args:
        model: the network; moved to ``device``. Frozen batch-norm layers stay as ``ftlib.freeze``
            left them.
        train_loader: yields ``(inputs, targets)`` batches or dicts with ``"labels"`` (see
            ``ftlib.training.batches``); targets are class indices.
        epochs: number of passes over ``train_loader``, at least 1 (counting resumed ones).
        optimizer: None uses ``default_optimizer``: AdamW with the body at ``lr`` and the
            head(s) at ``10 * lr``, weight decay on weight matrices only. Pass your own to
            choose otherwise (``lr`` and ``weight_decay`` are then ignored).
        lr: learning rate of the body for the default optimizer; None for ``DEFAULT_LR``.
        weight_decay: weight decay of the default optimizer (not on biases and norms); None for
            ``DEFAULT_WEIGHT_DECAY``. Given with an ``optimizer``, the two warn that they are
            not used.
        loss_fn: ``loss_fn(logits, targets)`` returning the batch mean; defaults to cross-entropy.
        val_loader: when given, evaluated after each epoch (``val_`` keys in the history).
        device: where to train; None picks the best available (see ftlib.device.best_device).
        amp: mixed precision: True lets the device choose (bfloat16, else float16 with loss
            scaling, on CUDA; float32 elsewhere), False keeps float32, ``"bf16"`` or ``"fp16"``
            choose the dtype on any device whose autocast has it.
        clip_grad_norm: when given, rescale the gradients so their total L2 norm is at most this.
        accumulate: add up the gradients of this many batches before each optimizer step (a
            batch ``accumulate`` times larger, in the memory of one). The loss of each batch is
            divided by ``accumulate``; a last, shorter group of an epoch still steps.
        topk: the k of the top-k accuracies to record; None records top-1 and top-5 (top-5 is
            1.0 for five classes or fewer). A k you give must be at most the number of classes.
        scheduler: a learning-rate scheduler of ``optimizer`` (so an optimizer must be given
            with it), stepped as ``scheduler_step`` says.
            ``ReduceLROnPlateau`` gets the validation loss (the training loss without a
            ``val_loader``).
        scheduler_step: ``"epoch"`` (the default) or ``"step"`` (after every optimizer step).
        early_stopping: when given, stop once its ``monitor`` has not improved for ``patience``
            epochs, and load the best epoch's weights back (``EarlyStopping``).
        checkpoint: a file to write after every epoch with all the run needs to resume (model,
            optimizer, scheduler, scaler, epoch, history, random states).
        resume: a file written through ``checkpoint`` to continue from: the remaining epochs up
            to ``epochs`` then train as the uninterrupted run would have, bit for bit on a CPU.
            Pass the same options as the run it continues. With ``resume`` equal to
            ``checkpoint`` a missing file starts the run afresh: one call starts and continues.
        performance: speed settings that do not change what is learned (channels-last layout,
            ``torch.compile``); None for none. See ``Performance``.
        progress: show a progress bar (tqdm; a widget in notebooks); False silences it.

    Under ``torchrun`` each process trains on its share of the data with
    DistributedDataParallel (see ``ftlib.training.distributed``); the batch size of
    ``train_loader`` is per process, metrics are summed over all processes, and only rank 0
    shows progress and writes checkpoints.

    Returns:
        The ``History``, one record per epoch (of the resumed run too, when resuming).

    Raises:
        TypeError: a dataset or tensor instead of a loader, a class instead of an instance
            (model, optimizer, scheduler, loss, early stopping, performance).
        ValueError: ``epochs`` or ``accumulate`` not a whole number of at least 1,
            ``clip_grad_norm`` not positive, a model with no trainable parameters, an
            optimizer without them, a scheduler of another optimizer (or without one), a
            OneCycleLR shorter than the run, early stopping on a key the run does not record,
            an empty loader, batches that are not ``(inputs, targets)``, inputs of the wrong
            dtype or number of channels, a loss that is not one number, targets that are not
            class indices of the model's outputs (checked before the loss sees them, and for
            every label the dataset lists before the first step, so no weight changes), a
            resumed run with other parts or more epochs than ``epochs``.
        NonFiniteLossError: the loss became NaN or infinite; the message names epoch and batch
            and what to try. The weights are those from before that batch.
    """
    topk_given = topk is not None
    topk, performance = check_run_inputs(
        "fit",
        model,
        train_loader,
        val_loader=val_loader,
        loss_fn=loss_fn,
        topk=topk,
        early_stopping=early_stopping,
        performance=performance,
    )
    epochs, accumulate = check_counts(
        epochs=epochs, accumulate=accumulate, clip_grad_norm=clip_grad_norm
    )
    check_instance(optimizer, "optimizer", torch.optim.Optimizer, _OPTIMIZER_EXAMPLE)
    step_every = SchedulerStep.parse(scheduler_step)
    per_batch = step_every is SchedulerStep.STEP
    check_scheduler(scheduler, optimizer, step_per_batch=per_batch)
    check_checkpoint_path(checkpoint, "checkpoint")
    device = best_device(device)
    world = distributed.current_world(device)
    device = distributed.process_device(world, device)
    model.to(device)
    use_layout(model, performance)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters, so fit would change nothing; "
            "unfreeze some (ftlib.unfreeze), or use evaluate/predict for a frozen model"
        )
    if optimizer is not None:
        check_optimizer(optimizer, model)
        ignored = [
            name
            for name, value in [("lr", lr), ("weight_decay", weight_decay)]
            if value is not None
        ]
        if ignored:
            warnings.warn(
                f"{' and '.join(ignored)} are for fit's default optimizer and not used with the "
                "optimizer passed; set them on that optimizer instead",
                stacklevel=2,
            )
    if optimizer is None:
        optimizer = default_optimizer(
            model,
            lr=DEFAULT_LR if lr is None else lr,
            weight_decay=DEFAULT_WEIGHT_DECAY if weight_decay is None else weight_decay,
        )
        if optimizer.param_groups[0]["lr"] == 0:
            warnings.warn("lr=0: the default optimizer will not change any weight", stacklevel=2)
    check_targets = _checks_targets(loss_fn, topk)
    loss_fn = loss_fn if loss_fn is not None else nn.functional.cross_entropy
    dtype = resolve_amp(amp, device)
    scaler = grad_scaler(device, enabled=dtype is not None, dtype=dtype)
    watch = Watch(early_stopping) if early_stopping is not None else None
    parts = RunParts(model, optimizer, scheduler, scaler, watch, (train_loader, val_loader))
    train_loader = distributed.shard_for_training(train_loader, world)
    steps_per_epoch = optimizer_steps_per_epoch(train_loader, accumulate)
    check_schedule_length(
        scheduler,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        step_per_batch=per_batch,
        may_continue=checkpoint is not None or resume is not None,
    )
    if _nothing_to_resume_yet(resume, checkpoint):
        resume = None
    history, stopped = load_run(resume, parts) if resume is not None else (History(), False)
    _check_same_records(history, resume, topk, has_val_loader=val_loader is not None)
    if len(history) > epochs:
        raise ValueError(
            f"the run in {resume} has trained {len(history)} epochs already, more than "
            f"epochs={epochs}; pass epochs={len(history) + 1} or more to train on, or load its "
            "weights with ftlib.load_checkpoint"
        )
    trained = distributed.wrap(model, device) if world.distributed else model
    forward = compiled(trained, performance)
    steps = OptimizerSteps(
        optimizer,
        scaler,
        trainable,
        clip_grad_norm=clip_grad_norm,
        accumulate=accumulate,
        scheduler=scheduler if per_batch else None,
        ddp=trained if world.distributed else None,
    )
    steps.updates = len(history) * (steps_per_epoch or 0)  # where a resumed run left off
    shared = {
        "device": device,
        "loss_fn": loss_fn,
        "topk": topk,
        "dtype": dtype,
        "performance": performance,
        "check_targets": check_targets,
        "fitting_topk": topk if topk_given else (),
        "progress": progress and world.is_main,
        "world": world,
    }
    bar = progress_bar(
        total=epochs, desc="fit", unit="epoch", enabled=progress and world.is_main, leave=True
    )
    bar.update(len(history))
    first_epoch = len(history) + 1
    all_targets = listed_targets(train_loader, val_loader) if check_targets else []
    try:
        for epoch in range(first_epoch, epochs + 1):
            if stopped:
                break
            start = time.perf_counter()
            distributed.set_epoch(train_loader, epoch - 1)
            model.train()
            desc = f"epoch {epoch}/{epochs}"
            train = _run_epoch(
                forward,
                train_loader,
                desc=desc,
                steps=steps,
                epoch=epoch,
                all_targets=all_targets if epoch == first_epoch else [],
                **shared,
            )
            distributed.broadcast_buffers(model, world)
            record: dict[str, float] = {"epoch": epoch, **_prefixed("train_", train)}
            if val_loader is not None:
                record.update(_prefixed("val_", _evaluate(model, val_loader, **shared)))
            if scheduler is not None and not per_batch:
                metric = record.get("val_loss", record["train_loss"])
                step_scheduler(scheduler, epoch=epoch, metric=metric)
            record["seconds"] = time.perf_counter() - start
            history.epochs.append(record)
            bar.update()
            bar.set_postfix_str(postfix(record))
            stopped = watch.update(record, model) if watch is not None else False
            if checkpoint is not None:
                if world.is_main:
                    save_run(checkpoint, parts, history, stopped)
                distributed.barrier(world)
    finally:
        bar.close()
    if watch is not None:
        watch.restore(model)
    return history


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    loss_fn: LossFn | None = None,
    device: str | torch.device | None = None,
    topk: Sequence[int] | None = None,
    amp: AmpSetting = True,
    progress: bool = True,
) -> dict[str, float]:
    """Mean loss and top-k accuracies of ``model`` on ``loader``, without training.

    Why: validation and test numbers must come from eval mode (batch-norm running statistics,
    no dropout) and cost no gradient memory; each module's mode is restored afterwards.

    Args:
        model: the network; moved to ``device``.
        loader: yields ``(inputs, targets)`` batches or dicts with ``"labels"``.
        loss_fn, device, topk, amp, progress: as in ``fit``.

    Under ``torchrun`` a DataLoader over a sequential sampler is split between the processes
    and the sums are added up, so every process gets the numbers of the whole loader.

    Returns:
        ``{"loss": ..., "top1": ..., "top5": ...}`` (one ``top{k}`` per k in ``topk``).

    Raises:
        ValueError: an empty loader, batches that are not ``(inputs, targets)``, or targets
            that are not class indices of the model's outputs.
    """
    check_model(model, "evaluate")
    check_loader(loader, "loader")
    topk_given, topk = topk is not None, check_topk(DEFAULT_TOPK if topk is None else topk)
    check_loss_fn(loss_fn)
    device = best_device(device)
    world = distributed.current_world(device)
    device = distributed.process_device(world, device)
    model.to(device)
    check_targets = _checks_targets(loss_fn, topk)
    loss_fn = loss_fn if loss_fn is not None else nn.functional.cross_entropy
    return _evaluate(
        model,
        loader,
        device=device,
        loss_fn=loss_fn,
        topk=topk,
        dtype=resolve_amp(amp, device),
        performance=Performance(),
        check_targets=check_targets,
        fitting_topk=topk if topk_given else (),
        progress=progress and world.is_main,
        world=world,
    )


def predict(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    device: str | torch.device | None = None,
    amp: AmpSetting = True,
    progress: bool = True,
) -> torch.Tensor:
    """The model's outputs (logits) for every sample of ``loader``, in loader order.

    Why: confusion matrices, error analysis and submissions need the raw scores, not a summary.

    Args:
        model: the network; run in eval mode without gradients, modes restored afterwards.
        loader: yields input tensors, ``(inputs, ...)`` tuples whose first item is the input,
            or dicts of model inputs (a ``"labels"`` entry is ignored).
        device, amp, progress: as in ``fit``.

    Returns:
        A float32 tensor of shape ``(N, C)`` on the CPU. Under ``torchrun`` every process
        predicts the whole loader.

    Raises:
        ValueError: an empty loader, or batches with no inputs.
    """
    check_model(model, "predict")
    check_loader(loader, "loader")
    device = best_device(device)
    device = distributed.process_device(distributed.current_world(device), device)
    model.to(device)
    dtype = resolve_amp(amp, device)
    outputs = []
    bar = progress_bar(
        total=_length(loader), desc="predict", unit="batch", enabled=progress, leave=False
    )
    try:
        with eval_mode(model), torch.no_grad():
            for batch in batches(loader):
                inputs = to_device(inputs_of(batch), device)
                with autocast(device, enabled=dtype is not None, dtype=dtype):
                    logits, _ = split_outputs(call_model(model, inputs))
                outputs.append(logits.float())
                bar.update()
    finally:
        bar.close()
    if not outputs:
        raise ValueError(_EMPTY_LOADER)
    return torch.cat(outputs).cpu()


_EMPTY_LOADER = (
    "the data loader yielded no batches; check that its dataset is not empty, and use "
    "drop_last=False when it holds fewer samples than one batch"
)


def _run_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    device: torch.device,
    topk: Sequence[int],
    progress: bool,
    world: distributed.World,
    desc: str,
    steps: OptimizerSteps | None = None,
    epoch: int = 0,
    sum_over_processes: bool = True,
    all_targets: Sequence[tuple[str, torch.Tensor]] = (),
    **options: Any,
) -> dict[str, float]:
    """One pass over ``loader``, training when ``steps`` is given; the loader is iterated once.

    ``all_targets``: (where from, every target) of whole datasets, checked against the model's
    outputs after the first forward pass, before the first step. ``options`` are those of
    ``batch_loss``.
    """
    loss_sum = torch.zeros((), device=device)
    hits = TopkCounts(topk, device)
    seen = 0
    total = _length(loader)
    bar = progress_bar(total=total, desc=desc, unit="batch", enabled=progress, leave=False)
    try:
        for index, batch in enumerate(batches(loader), start=1):
            with steps.batch(index, total) if steps is not None else contextlib.nullcontext():
                loss, logits, targets = batch_loss(model, batch, device=device, **options)
                for where, targets_listed in all_targets if index == 1 else ():
                    check_target_range(targets_listed, logits.shape[1], where=where)
                if steps is None:  # evaluation: summed on the device, no waiting for a GPU
                    amount = loss.detach().float()
                else:
                    amount = steps.backward(loss, f"epoch {epoch}, batch {index} of {total or '?'}")
            loss_sum += amount * len(targets)
            if topk:
                hits.add(logits.detach(), targets)
            seen += len(targets)
            bar.update()
        if steps is not None:
            steps.finish_epoch()
    finally:
        bar.close()
    hit_counts = hits.counts()
    counts = [loss_sum, *hit_counts.values(), torch.tensor(seen, device=device)]
    if world.distributed and sum_over_processes:
        counts = distributed.sum_over_processes(counts)
    loss_sum, *summed_hits, seen_count = counts
    seen = int(seen_count.item())
    if seen == 0 and epoch > 1 and iter(loader) is loader:
        raise ValueError(
            f"the loader yielded no batches in epoch {epoch}: it is an iterator (a generator, "
            "say), used up after one pass; pass something that can be iterated again, such as "
            "a DataLoader or a list of batches"
        )
    if seen == 0:
        raise ValueError(_EMPTY_LOADER)
    accuracies = {
        f"top{k}": count.item() / seen for k, count in zip(hit_counts, summed_hits, strict=True)
    }
    return {"loss": loss_sum.item() / seen, **accuracies}


def _evaluate(
    model: nn.Module, loader: Iterable[Any], *, world: distributed.World, **options: Any
) -> dict[str, float]:
    """``evaluate`` on a model already on its device; shared by ``fit`` for validation."""
    shard, split = distributed.shard_for_evaluation(loader, world)
    with eval_mode(model), torch.no_grad():
        return _run_epoch(
            model, shard, world=world, desc="evaluate", sum_over_processes=split, **options
        )


def _checks_targets(loss_fn: LossFn | None, topk: Sequence[int]) -> bool:
    """Targets must be class indices for the default loss and for top-k accuracy; your own
    loss with ``topk=()`` may take any targets (regression, soft labels)."""
    return loss_fn is None or bool(topk)


_OPTIMIZER_EXAMPLE = "torch.optim.AdamW(model.parameters(), lr=1e-3)"


def _nothing_to_resume_yet(resume: Any, checkpoint: Any) -> bool:
    """``fit(checkpoint=p, resume=p)`` starts afresh while ``p`` does not exist yet, so the same
    call both starts a run and continues it after an interruption."""
    return (
        resume is not None
        and checkpoint is not None
        and Path(resume) == Path(checkpoint)
        and not Path(resume).exists()
    )


def _check_same_records(
    history: History, resume: Any, topk: Sequence[int], *, has_val_loader: bool
) -> None:
    """A resumed run must record what the run it continues recorded (its topk, its val_loader),
    or the history would hold two kinds of epochs."""
    if not history.epochs:
        return
    now = set(recorded_keys(topk, has_val_loader=has_val_loader))
    saved = set(history.epochs[-1]) - {"epoch", "seconds"}
    if saved != now:
        raise ValueError(
            f"the run in {resume} recorded {sorted(saved)} and this fit call would record "
            f"{sorted(now)}; resume with the same topk and val_loader as the run you continue"
        )


def _length(loader: Iterable[Any]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:  # an iterable dataset or a generator
        return None


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {prefix + key: value for key, value in metrics.items()}


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, each module's own train/eval flag restored on the way out."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
