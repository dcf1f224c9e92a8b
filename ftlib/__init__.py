"""ftlib: fine-tuning pretrained PyTorch models, from the first scalar example to a GPU project.

The names below are the ones a project needs most. Each lives in a module of its own, grouped by
what it is for: ``ftlib.surgery`` (freezing, heads, the three states, LoRA adapters),
``ftlib.training`` (the loop, parameter groups, cached features, checkpoints), ``ftlib.models``,
``ftlib.data``, ``ftlib.analysis`` (diagnostics, plots), and the flat modules ``ftlib.device``,
``ftlib.seeding``, ``ftlib.metrics``, ``ftlib.stats`` and ``ftlib.strategy``.

``import ftlib`` imports nothing heavy: each name is imported from its module on first use, so
a kernel or a script pays only for what it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftlib._lazy import lazy_exports

_EXPORTS = {
    "autocast": "ftlib.device",
    "best_device": "ftlib.device",
    "to_device": "ftlib.device",
    "seed_everything": "ftlib.seeding",
    "topk_accuracy": "ftlib.metrics",
    "PairedComparison": "ftlib.stats",
    "compare_paired": "ftlib.stats",
    "Plan": "ftlib.strategy",
    "Quadrant": "ftlib.strategy",
    "recommend": "ftlib.strategy",
    "BatchNormPolicy": "ftlib.surgery.freezing",
    "freeze": "ftlib.surgery.freezing",
    "freeze_to": "ftlib.surgery.freezing",
    "parameter_summary": "ftlib.surgery.freezing",
    "top_level_blocks": "ftlib.surgery.freezing",
    "unfreeze": "ftlib.surgery.freezing",
    "AmbiguousHeadError": "ftlib.surgery.heads",
    "HeadNotFoundError": "ftlib.surgery.heads",
    "all_heads": "ftlib.surgery.heads",
    "find_head": "ftlib.surgery.heads",
    "find_heads": "ftlib.surgery.heads",
    "swap_head": "ftlib.surgery.heads",
    "State": "ftlib.surgery.states",
    "prepare": "ftlib.surgery.states",
    "LoRAConv2d": "ftlib.surgery.lora",
    "LoRALayer": "ftlib.surgery.lora",
    "LoRALinear": "ftlib.surgery.lora",
    "add_lora": "ftlib.surgery.lora",
    "load_lora": "ftlib.surgery.lora",
    "merge_lora": "ftlib.surgery.lora",
    "save_lora": "ftlib.surgery.lora",
    "History": "ftlib.training.history",
    "NonFiniteLossError": "ftlib.training.steps",
    "SchedulerStep": "ftlib.training.loop",
    "default_optimizer": "ftlib.training.loop",
    "evaluate": "ftlib.training.loop",
    "fit": "ftlib.training.loop",
    "predict": "ftlib.training.loop",
    "EarlyStopping": "ftlib.training.early_stopping",
    "fine_tune": "ftlib.training.recipes",
    "gradual_unfreeze": "ftlib.training.recipes",
    "lr_find": "ftlib.training.lr_find",
    "Performance": "ftlib.training.performance",
    "body_layers": "ftlib.training.optim",
    "param_groups": "ftlib.training.optim",
    "extract_features": "ftlib.training.caching",
    "fit_head_cached": "ftlib.training.caching",
    "ArchitectureMismatchError": "ftlib.training.checkpoint",
    "HeadMismatchError": "ftlib.training.checkpoint",
    "checkpoint_extra": "ftlib.training.checkpoint",
    "load_checkpoint": "ftlib.training.checkpoint",
    "save_checkpoint": "ftlib.training.checkpoint",
    "SmallCNN": "ftlib.models.small_cnn",
    "load_pretrained": "ftlib.models.small_cnn",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from ftlib.device import autocast, best_device, to_device
    from ftlib.metrics import topk_accuracy
    from ftlib.models.small_cnn import SmallCNN, load_pretrained
    from ftlib.seeding import seed_everything
    from ftlib.stats import PairedComparison, compare_paired
    from ftlib.strategy import Plan, Quadrant, recommend
    from ftlib.surgery.freezing import (
        BatchNormPolicy,
        freeze,
        freeze_to,
        parameter_summary,
        top_level_blocks,
        unfreeze,
    )
    from ftlib.surgery.heads import (
        AmbiguousHeadError,
        HeadNotFoundError,
        all_heads,
        find_head,
        find_heads,
        swap_head,
    )
    from ftlib.surgery.lora import (
        LoRAConv2d,
        LoRALayer,
        LoRALinear,
        add_lora,
        load_lora,
        merge_lora,
        save_lora,
    )
    from ftlib.surgery.states import State, prepare
    from ftlib.training.caching import extract_features, fit_head_cached
    from ftlib.training.checkpoint import (
        ArchitectureMismatchError,
        HeadMismatchError,
        checkpoint_extra,
        load_checkpoint,
        save_checkpoint,
    )
    from ftlib.training.early_stopping import EarlyStopping
    from ftlib.training.history import History
    from ftlib.training.loop import SchedulerStep, default_optimizer, evaluate, fit, predict
    from ftlib.training.lr_find import lr_find
    from ftlib.training.optim import body_layers, param_groups
    from ftlib.training.performance import Performance
    from ftlib.training.recipes import fine_tune, gradual_unfreeze
    from ftlib.training.steps import NonFiniteLossError
