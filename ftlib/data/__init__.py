"""Datasets for the lessons, all available offline.

- `digits`: scikit-learn's 8x8 digits split into a source task (0-4) and a target task (5-9).
- `synthetic`: generated shapes with knobs for dataset size and similarity to the source domain.
- `folders`: your own images in an ImageFolder, with the transforms of pretrained weights.
- `weights`: torchvision weights and datasets from local files, with clear errors when missing.
"""

from ftlib.data.digits import DigitsTasks, digits_tasks, subset_per_class
from ftlib.data.folders import image_folder, make_image_folder
from ftlib.data.synthetic import SHAPES, ShapeTask, make_shapes, render_shapes
from ftlib.data.weights import (
    DatasetNotFoundError,
    WeightsHashError,
    WeightsNotFoundError,
    pretrained_torchvision,
    resolve_weights,
    torchvision_dataset,
    verify_hash,
    weights_path,
)

__all__ = [
    "SHAPES",
    "DatasetNotFoundError",
    "DigitsTasks",
    "ShapeTask",
    "WeightsHashError",
    "WeightsNotFoundError",
    "digits_tasks",
    "image_folder",
    "make_image_folder",
    "make_shapes",
    "pretrained_torchvision",
    "render_shapes",
    "resolve_weights",
    "subset_per_class",
    "torchvision_dataset",
    "verify_hash",
    "weights_path",
]
