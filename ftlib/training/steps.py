"""From a batch's loss to an optimizer step: the part of the loop that changes the weights.

Backward with loss scaling (float16), a stop before a NaN or infinite loss reaches the weights,
gradient clipping on the true (unscaled) gradients, accumulation over several batches (skipping
DistributedDataParallel's all-reduce in between), and a scheduler stepped after each step.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; no weight was updated with it."""


class OptimizerSteps:
    """Backward passes and optimizer steps: loss scaling, clipping, accumulation, the scheduler.

    With ``accumulate=k`` the optimizer steps after every k-th batch and after the last batch
    of an epoch; under DistributedDataParallel the batches in between skip the gradient
    all-reduce (``no_sync``), as they would in a hand-written DDP loop.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        parameters: list[nn.Parameter],
        *,
        clip_grad_norm: float | None,
        accumulate: int,
        scheduler: Any | None,
        ddp: nn.Module | None,
    ) -> None:
        self.optimizer, self.scaler, self.parameters = optimizer, scaler, parameters
        self.clip_grad_norm, self.accumulate = clip_grad_norm, accumulate
        self.scheduler, self.ddp = scheduler, ddp
        self.steps_now = True
        self.pending = False
        self.updates = 0  # optimizer steps of the run; fit sets it when resuming
        for parameter in parameters:  # gradients left over from before fit must not count
            parameter.grad = None

    def batch(self, index: int, total: int | None) -> contextlib.AbstractContextManager:
        """Context for the forward and backward pass of batch ``index`` (from 1) of ``total``."""
        self.steps_now = index % self.accumulate == 0 or index == total
        if self.ddp is not None and not self.steps_now and total is not None:
            return self.ddp.no_sync()
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor, where: str) -> float:
        """Backpropagate ``loss``, then step if this batch completes a group.

        Returns:
            The loss as a Python float. Reading it waits for the device, once per batch: the
            price of stopping before a NaN reaches the weights.

        Raises:
            NonFiniteLossError: ``loss`` is NaN or infinite (checked before backward).
        """
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the training loss is {value} at {where}; fit stopped before this batch "
                "changed any weight. Try a lower learning rate (lr=...), gradient clipping "
                "(clip_grad_norm=1.0), float32 or bfloat16 instead of float16 (amp=False or "
                "amp='bf16'), and check that the inputs hold no NaN or inf"
            )
        scaled = loss if self.accumulate == 1 else loss / self.accumulate
        self.scaler.scale(scaled).backward()
        self.pending = True
        if self.steps_now:
            self.step()
        return value

    def finish_epoch(self) -> None:
        """Step on what is left of a group when a loader without a length ran out."""
        if self.pending:
            self.step()

    def step(self) -> None:
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.parameters, self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        for parameter in self.parameters:
            parameter.grad = None
        self.pending = False
        self.updates += 1
        if self.scheduler is not None:
            step_scheduler(self.scheduler, updates=self.updates)


def step_scheduler(
    scheduler: Any, *, epoch: int | None = None, updates: int | None = None, metric: float = 0.0
) -> None:
    """Step a torch or a timm scheduler, after an epoch (``epoch`` done) or an optimizer step
    (``updates`` so far).

    Why: timm's schedulers (``CosineLRScheduler``, ``create_scheduler_v2``) are told where the
    run is, ``step(epoch, metric)`` and ``step_update(num_updates)``, where torch's count their
    own calls; ``ReduceLROnPlateau`` needs the validation loss (``metric``).
    """
    if callable(getattr(scheduler, "step_update", None)):  # timm
        if epoch is not None:
            scheduler.step(epoch, metric)
        else:
            scheduler.step_update(updates)
    elif isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metric)
    else:
        scheduler.step()
