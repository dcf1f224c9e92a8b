"""Early stopping: end training when the validation score stops improving, keep the best weights.

Fine-tuning on little data overfits within a few epochs; the epoch with the best validation
score is the model to keep, and the epochs after it are wasted time. ``EarlyStopping`` says what
to watch and how long to wait; ``fit(early_stopping=...)`` does the watching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ftlib._checks import as_count
from ftlib.training.history import higher_is_better, unknown_key


@dataclass(frozen=True)
class EarlyStopping:
    """When ``fit`` should stop before its last epoch.

    Args:
        monitor: the history key to watch, e.g. ``"val_loss"`` (lower is better) or
            ``"val_top1"`` (higher is better: every key with ``top`` in it).
        patience: how many epochs without improvement to allow before stopping, at least 1.
        min_delta: the smallest change that counts as an improvement.
        restore_best: at the end, load the weights of the best epoch back into the model.
    """

    monitor: str = "val_loss"
    patience: int = 3
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "patience", as_count(self.patience, "patience", minimum=1))
        if not self.min_delta >= 0:
            raise ValueError(f"min_delta must be a number >= 0, got {self.min_delta!r}")


@dataclass
class Watch:
    """The state of one run's early stopping: best value, its epoch, its weights."""

    rule: EarlyStopping
    best: float = math.nan
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def update(self, record: dict[str, float], model: nn.Module) -> bool:
        """Take in one epoch's record; True when training should stop now.

        Raises:
            KeyError: the record has no ``rule.monitor`` key; says which keys there are.
        """
        if self.rule.monitor not in record:
            raise unknown_key(self.rule.monitor, list(record))
        value = record[self.rule.monitor]
        if self.best_epoch == 0 or self._improves(value):
            self.best, self.best_epoch = value, int(record["epoch"])
            if self.rule.restore_best:
                self.best_state = _cpu_copy(model.state_dict())
        return int(record["epoch"]) - self.best_epoch >= self.rule.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (when ``restore_best`` is set)."""
        if self.rule.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """Plain data for a resumable checkpoint."""
        return {"best": self.best, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from what ``state_dict`` saved."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_state = state["best_state"]

    def _improves(self, value: float) -> bool:
        if higher_is_better(self.rule.monitor):
            return value > self.best + self.rule.min_delta
        return value < self.best - self.rule.min_delta


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}
