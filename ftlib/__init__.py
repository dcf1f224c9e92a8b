"""ftlib: fine-tuning pretrained PyTorch models, from the first scalar example to a GPU project.

The names below are the ones a project needs most; each lives in a module of its own
(``ftlib.freezing``, ``ftlib.heads``, ...). ``ftlib.data``, ``ftlib.diagnostics`` and
``ftlib.plots`` are imported on their own.
"""

from ftlib.caching import extract_features, fit_head_cached
from ftlib.checkpoint import (
    HeadMismatchError,
    checkpoint_extra,
    load_checkpoint,
    save_checkpoint,
)
from ftlib.device import autocast, best_device, to_device
from ftlib.freezing import (
    BatchNormPolicy,
    freeze,
    freeze_to,
    parameter_summary,
    top_level_blocks,
    unfreeze,
)
from ftlib.heads import HeadNotFoundError, find_head, swap_head
from ftlib.metrics import topk_accuracy
from ftlib.models import SmallCNN, load_pretrained
from ftlib.optim import param_groups
from ftlib.seeding import seed_everything
from ftlib.states import State, prepare
from ftlib.strategy import Plan, Quadrant, recommend
from ftlib.training import History, evaluate, fit, predict

__all__ = [
    "BatchNormPolicy",
    "HeadMismatchError",
    "HeadNotFoundError",
    "History",
    "Plan",
    "Quadrant",
    "SmallCNN",
    "State",
    "autocast",
    "best_device",
    "checkpoint_extra",
    "evaluate",
    "extract_features",
    "find_head",
    "fit",
    "fit_head_cached",
    "freeze",
    "freeze_to",
    "load_checkpoint",
    "load_pretrained",
    "param_groups",
    "parameter_summary",
    "predict",
    "prepare",
    "recommend",
    "save_checkpoint",
    "seed_everything",
    "swap_head",
    "to_device",
    "top_level_blocks",
    "topk_accuracy",
    "unfreeze",
]
