"""The learning-rate range test: sweep the rate up exponentially and watch the loss.

Leslie Smith's test (2017), made popular by fastai's ``lr_find``: train for a few dozen steps
while the learning rate grows from tiny to huge. The loss first stays flat (too small a rate),
then falls (a useful rate), then shoots up (too large). A good rate sits where the loss falls
fastest. The sweep changes the model, so ``lr_find`` puts everything back afterwards: weights,
batch-norm statistics, train/eval modes and the random state, so the ``fit`` that follows runs
as if the sweep had never happened.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ftlib._checks import as_count
from ftlib.device import best_device, grad_scaler
from ftlib.training.arguments import check_run_inputs
from ftlib.training.batches import LossFn, batch_loss
from ftlib.training.loop import DEFAULT_WEIGHT_DECAY, default_optimizer, eval_mode
from ftlib.training.performance import AmpSetting, Performance, resolve_amp
from ftlib.training.progress import progress_bar
from ftlib.training.steps import NonFiniteLossError, OptimizerSteps


@dataclass(frozen=True)
class LrSweep:
    """What ``lr_find`` measured.

    Attributes:
        lrs: the body's learning rate at each step (what you would pass as ``fit(lr=...)``).
        losses: the training loss at each step, smoothed (an exponential moving average).
        suggestion: the rate where the smoothed loss fell fastest (steepest descent per
            decade of rate).
        diverged: the sweep stopped early because the loss exploded.
    """

    lrs: list[float]
    losses: list[float]
    suggestion: float
    diverged: bool


def lr_find(
    model: nn.Module,
    train_loader: Iterable[Any],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    diverge_factor: float = 4.0,
    smoothing: float = 0.98,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    loss_fn: LossFn | None = None,
    device: str | torch.device | None = None,
    amp: AmpSetting = True,
    progress: bool = True,
) -> LrSweep:
    """Sweep the learning rate from ``start_lr`` to ``end_lr`` and suggest one for ``fit``.

    Why: the right rate depends on the model, the data and what is frozen; a one-minute sweep
    finds its order of magnitude better than guessing.

    The optimizer is ``fit``'s default (``default_optimizer``): the swept rate is the body's,
    the head learns 10 times faster throughout. Batches are drawn from ``train_loader``, again
    from its start when it runs out.

    Args:
        model: the network, prepared as it will be trained (frozen parts stay frozen). It is
            trained during the sweep and restored exactly afterwards.
        train_loader: yields ``(inputs, targets)`` batches, as for ``fit``.
        start_lr, end_lr: the first and last rate, ``0 < start_lr < end_lr``.
        steps: optimizer steps of the sweep, at least 5; the rate grows by the same factor at
            each step.
        diverge_factor: stop when the smoothed loss exceeds this multiple of its minimum.
        smoothing: weight of the past in the moving average of the loss, in [0, 1).
        weight_decay, loss_fn, device, amp, progress: as for ``fit``.

    Returns:
        An ``LrSweep``: rates, smoothed losses, the suggestion. ``ftlib.analysis.plots
        .plot_lr_find`` draws it.

    Raises:
        ValueError: rates out of order or not positive, fewer than 5 steps, a loader that
            yields no batch, or batches ``fit`` would refuse.
    """
    check_run_inputs("lr_find", model, train_loader, loss_fn=loss_fn, topk=())
    steps = as_count(steps, "steps", minimum=5)
    _check_sweep(start_lr, end_lr, steps, diverge_factor, smoothing)
    device = best_device(device)
    model.to(device)
    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    options = {
        "device": device,
        "loss_fn": loss_fn if loss_fn is not None else nn.functional.cross_entropy,
        "dtype": resolve_amp(amp, device),
        "performance": Performance(),
        "check_targets": True,
    }
    rates = [start_lr * growth**step for step in range(steps)]
    sweep = _sweep(model, train_loader, rates, options, weight_decay, progress)
    with _restored(model, train_loader), contextlib.closing(sweep):
        lrs, losses, diverged = _smoothed(sweep, rates, smoothing, diverge_factor)
    if not lrs:
        raise ValueError(
            "the sweep recorded no step: the loader yielded no batch, or the loss was NaN at "
            "the smallest rate (check the inputs)"
        )
    return LrSweep(lrs, losses, _steepest(lrs, losses), diverged)


def _sweep(
    model: nn.Module,
    loader: Iterable[Any],
    rates: list[float],
    options: dict[str, Any],
    weight_decay: float,
    progress: bool,
) -> Iterator[float]:
    """Train one batch at each of ``rates`` in turn; yield each batch's loss (stops at NaN)."""
    optimizer = default_optimizer(model, lr=rates[0], weight_decay=weight_decay)
    multipliers = [group["lr"] / rates[0] for group in optimizer.param_groups]  # head 10x
    dtype = options["dtype"]
    steps = OptimizerSteps(
        optimizer,
        grad_scaler(options["device"], enabled=dtype is not None, dtype=dtype),
        [p for group in optimizer.param_groups for p in group["params"]],
        clip_grad_norm=None,
        accumulate=1,
        scheduler=None,
        ddp=None,
    )
    bar = progress_bar(total=len(rates), desc="lr_find", unit="step", enabled=progress, leave=False)
    model.train()
    try:
        for step, (lr, batch) in enumerate(zip(rates, _endless(loader), strict=False), start=1):
            for group, multiplier in zip(optimizer.param_groups, multipliers, strict=True):
                group["lr"] = lr * multiplier
            loss, _, _ = batch_loss(model, batch, **options)
            try:
                yield steps.backward(loss, f"step {step} of the sweep")
            except NonFiniteLossError:
                return
            bar.update()
    finally:
        bar.close()


def _smoothed(
    losses: Iterator[float], rates: list[float], smoothing: float, diverge_factor: float
) -> tuple[list[float], list[float], bool]:
    """(rates, bias-corrected moving averages of the losses, diverged), stopping early when the
    average exceeds ``diverge_factor`` times its minimum or the loss turns NaN."""
    seen_rates, averages, average, best = [], [], 0.0, math.inf
    for step, loss in enumerate(losses, start=1):
        average = smoothing * average + (1 - smoothing) * loss
        smoothed = average / (1 - smoothing**step)
        seen_rates.append(rates[step - 1])
        averages.append(smoothed)
        best = min(best, smoothed)
        if smoothed > diverge_factor * best:
            return seen_rates, averages, True
    return seen_rates, averages, len(averages) < len(rates)


def _steepest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the loss falls fastest against log(rate), searched before the lowest
    loss: past it the loss climbs, and a steep climb is no recommendation."""
    lowest = losses.index(min(losses))
    if lowest < 2:
        return lrs[lowest]
    slopes = [
        (losses[i + 1] - losses[i - 1]) / math.log(lrs[i + 1] / lrs[i - 1])
        for i in range(1, lowest)
    ]
    return lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]


def _endless(loader: Iterable[Any]) -> Iterator[Any]:
    """The loader's batches, pass after pass (one iterator per pass)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


@contextlib.contextmanager
def _restored(model: nn.Module, loader: Iterable[Any]) -> Iterator[None]:
    """Put back the model's state and modes, the global random state and the loader's."""
    state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    generator: torch.Generator | None = getattr(loader, "generator", None)
    loader_state = generator.get_state() if generator is not None else None
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with eval_mode(model), torch.random.fork_rng(devices=devices):
            yield
    finally:
        model.load_state_dict(state)
        for parameter in model.parameters():
            parameter.grad = None
        if generator is not None:
            generator.set_state(loader_state)


def _check_sweep(
    start_lr: float, end_lr: float, steps: int, diverge_factor: float, smoothing: float
) -> None:
    if not 0 < start_lr < end_lr:
        raise ValueError(
            f"the sweep needs 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}"
        )
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be above 1, got {diverge_factor!r}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
