"""How an image file becomes the tensor a model takes: resize, centre crop, normalise.

A pretrained network works only on images prepared as its training images were; torchvision's
weights carry that recipe (``weights.transforms()``). ``Preprocessing`` keeps its numbers as
plain data, so a checkpoint can carry them to ``predict``, and lets a project choose another
image size (a smaller one trains faster; the resize keeps the weights' ratio to the crop).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.models import WeightsEnum
from torchvision.transforms import InterpolationMode

from ftlib.data.weights import resolve_weights


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize``, crop the centre ``size`` x ``size``, normalise.

    Args:
        size: side of the square the model sees, in pixels.
        resize: the shorter side before cropping.
        mean, std: per-channel normalisation (RGB), as the weights were trained with.
        interpolation: torchvision's interpolation name ("bilinear", "bicubic").
    """

    size: int
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    @classmethod
    def for_model(cls, arch: str, weights: WeightsEnum | None, size: int | None) -> Preprocessing:
        """The preprocessing of ``weights`` (of ``arch``'s default weights when None), at
        ``size`` pixels (None: the weights' own crop size).

        Raises:
            ValueError: an unknown architecture, or ``size`` below the smallest image the
                architecture accepts.
        """
        recipe = weights if weights is not None else resolve_weights(arch, "DEFAULT")
        preset = recipe.transforms()
        crop, resize = preset.crop_size[0], preset.resize_size[0]
        size = crop if size is None else size
        smallest = max(recipe.meta.get("min_size", (1, 1)))
        if size < smallest:
            raise ValueError(
                f"{arch} needs images of at least {smallest}x{smallest} pixels, got an image "
                f"size of {size}; pass --image-size {smallest} or more"
            )
        return cls(
            size=size,
            resize=round(size * resize / crop),
            mean=tuple(preset.mean),
            std=tuple(preset.std),
            interpolation=preset.interpolation.value,
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Preprocessing:
        """The inverse of ``to_dict`` (a checkpoint stores lists where there were tuples)."""
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint or a JSON file."""
        return asdict(self)

    def evaluation(self) -> Callable[[Image.Image], torch.Tensor]:
        """The deterministic transform for validation, test and prediction."""
        return transforms.Compose(
            [
                transforms.Resize(self.resize, interpolation=self._mode()),
                transforms.CenterCrop(self.size),
                *self._to_tensor(),
            ]
        )

    def training(self, augment: bool) -> Callable[[Image.Image], torch.Tensor]:
        """With ``augment``, a random resized crop and horizontal flips (a new draw every
        epoch); without, the evaluation transform, so every epoch sees the same tensors."""
        if not augment:
            return self.evaluation()
        return transforms.Compose(
            [
                transforms.RandomResizedCrop(self.size, interpolation=self._mode()),
                transforms.RandomHorizontalFlip(),
                *self._to_tensor(),
            ]
        )

    def _mode(self) -> InterpolationMode:
        return InterpolationMode(self.interpolation)

    def _to_tensor(self) -> list[Callable]:
        return [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]


class ImageFiles(Dataset):
    """Image files as tensors, with their labels when there are labels.

    Args:
        files: the image paths.
        transform: turns an RGB ``PIL.Image`` into a tensor.
        labels: one class index per file, or None for unlabelled images.

    Items are ``(image, label)`` with labels, the image alone without. A file that cannot be
    decoded raises ``ValueError`` naming it.
    """

    def __init__(
        self,
        files: Sequence[Path],
        transform: Callable[[Image.Image], torch.Tensor],
        labels: Sequence[int] | None = None,
    ) -> None:
        if labels is not None and len(labels) != len(files):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        self.files, self.transform, self.labels = list(files), transform, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Any:
        path = self.files[index]
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except OSError as error:  # PIL's UnidentifiedImageError is an OSError too
            raise ValueError(
                f"cannot read the image {path} ({error}); replace or remove the file"
            ) from None
        tensor = self.transform(image)
        return tensor if self.labels is None else (tensor, self.labels[index])
