"""Training a fine-tuned model: the loop (``fit``, ``evaluate``, ``predict``), optimizer
parameter groups, cached features for a frozen body, checkpoints, the recipes built on the loop
(early stopping, resumable runs, torchrun)."""

from ftlib.training.early_stopping import EarlyStopping
from ftlib.training.history import History
from ftlib.training.loop import default_optimizer, evaluate, fit, predict
from ftlib.training.performance import Performance
from ftlib.training.steps import NonFiniteLossError

__all__ = [
    "EarlyStopping",
    "History",
    "NonFiniteLossError",
    "Performance",
    "default_optimizer",
    "evaluate",
    "fit",
    "predict",
]
