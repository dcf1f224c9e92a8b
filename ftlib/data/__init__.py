"""Datasets for the lessons, all available offline.

- `digits`: scikit-learn's 8x8 digits split into a source task (0-4) and a target task (5-9).
- `synthetic`: generated shapes with knobs for dataset size and similarity to the source domain.
- `folders`: your own images in an ImageFolder, with the transforms of pretrained weights.
- `weights`: torchvision weights and datasets from local files, with clear errors when missing.

Each name is imported from its module on first use, so ``from ftlib.data import digits_tasks``
does not pay for importing torchvision, which only `folders` and `weights` need.
"""

# ruff: noqa: F401 (the names imported for type checkers are the lazily exported API)
from __future__ import annotations

from typing import TYPE_CHECKING

from ftlib._lazy import lazy_exports

_EXPORTS = {
    "DigitsTasks": "ftlib.data.digits",
    "digits_tasks": "ftlib.data.digits",
    "subset_per_class": "ftlib.data.digits",
    "image_folder": "ftlib.data.folders",
    "make_image_folder": "ftlib.data.folders",
    "SHAPES": "ftlib.data.synthetic",
    "ShapeTask": "ftlib.data.synthetic",
    "make_shapes": "ftlib.data.synthetic",
    "render_shapes": "ftlib.data.synthetic",
    "DatasetNotFoundError": "ftlib.data.weights",
    "WeightsHashError": "ftlib.data.weights",
    "WeightsNotFoundError": "ftlib.data.weights",
    "pretrained_torchvision": "ftlib.data.weights",
    "resolve_weights": "ftlib.data.weights",
    "torchvision_architecture": "ftlib.data.weights",
    "torchvision_dataset": "ftlib.data.weights",
    "verify_hash": "ftlib.data.weights",
    "weights_path": "ftlib.data.weights",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ftlib.data.digits import DigitsTasks, digits_tasks, subset_per_class
    from ftlib.data.folders import image_folder, make_image_folder
    from ftlib.data.synthetic import SHAPES, ShapeTask, make_shapes, render_shapes
    from ftlib.data.weights import (
        DatasetNotFoundError,
        WeightsHashError,
        WeightsNotFoundError,
        pretrained_torchvision,
        resolve_weights,
        torchvision_architecture,
        torchvision_dataset,
        verify_hash,
        weights_path,
    )
