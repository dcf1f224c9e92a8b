"""Training a fine-tuned model: the loop (``fit``, ``evaluate``, ``predict``), optimizer
parameter groups, cached features for a frozen body, and checkpoints."""

from ftlib.training.loop import History, evaluate, fit, predict

__all__ = ["History", "evaluate", "fit", "predict"]
