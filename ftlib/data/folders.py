"""Your own images as a dataset: a folder per class, preprocessed as pretrained weights expect.

A network pretrained on ImageNet only works on images prepared like its training images (size,
crop, mean and standard deviation of each channel). torchvision's weights carry that recipe as
`weights.transforms()`; `image_folder` applies it to a folder laid out as `root/<class>/<image>`.
`make_image_folder` writes such a folder of generated shapes, for tests and for trying the
pipeline before you have photos of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.models import WeightsEnum, get_weight
from torchvision.transforms._presets import ImageClassification

from ftlib.data.synthetic import render_shapes

_LAYOUT = "root/<class name>/<image>.png (one sub-folder per class)"


def image_folder(
    root: str | Path,
    *,
    weights: WeightsEnum | str | None = None,
    train: bool = True,
    transform: Callable | None = None,
) -> ImageFolder:
    """Load `root/<class>/<image>` as a labelled dataset, preprocessed for `weights`.

    Why: fine-tuning a pretrained network on your own images needs the preprocessing the network
    was trained with; the weights know it, so you do not copy numbers by hand.

    Args:
        root: the folder with one sub-folder per class; classes are labelled in sorted order.
        weights: torchvision weights (an enum member, or a name such as
            "ResNet18_Weights.DEFAULT"); None leaves the images at their size as tensors in [0, 1].
        train: with weights, True adds the usual training augmentation (random resized crop to the
            weights' crop size and horizontal flips, then the weights' normalisation); False uses
            `weights.transforms()` unchanged (resize, centre crop, normalise) for evaluation.
        transform: your own preprocessing instead (e.g. to resize images for a small model);
            then `weights` and `train` are not used.

    Returns:
        A torchvision `ImageFolder` yielding (image tensor, class index); `.classes` lists names.
        Hidden folders (a name starting with "."; Jupyter writes `.ipynb_checkpoints`) are not
        classes.

    Raises:
        FileNotFoundError: if `root` does not exist, holds no class folders, or a class folder
            holds no image files.
        ValueError: for a weights name torchvision does not know.
    """
    root = Path(root)
    _check_layout(root)
    return _VisibleImageFolder(str(root), transform=transform or _transform(weights, train))


class _VisibleImageFolder(ImageFolder):
    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        classes = [path.name for path in _class_dirs(Path(directory))]
        return classes, {name: index for index, name in enumerate(classes)}


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_layout(root: Path) -> None:
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root.resolve()} does not exist; expected {_LAYOUT}. "
            "make_image_folder(root) writes a small example"
        )
    class_dirs = _class_dirs(root)
    if not class_dirs:
        raise FileNotFoundError(
            f"image folder {root.resolve()} has no class sub-folders; expected {_LAYOUT}"
        )
    empty = [path.name for path in class_dirs if not any(_is_image(p) for p in path.rglob("*"))]
    if empty:
        raise FileNotFoundError(
            f"class folders {empty} in {root.resolve()} hold no images with extensions "
            f"{', '.join(IMG_EXTENSIONS)}; add images or remove those folders"
        )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS


def _transform(weights: WeightsEnum | str | None, train: bool) -> Callable:
    if weights is None:
        return transforms.ToTensor()
    if isinstance(weights, str):
        try:
            weights = get_weight(weights)
        except (ValueError, KeyError):
            raise ValueError(
                f"unknown weights {weights!r}; use a name like 'ResNet18_Weights.DEFAULT' "
                "or pass the enum member, e.g. torchvision.models.ResNet18_Weights.DEFAULT"
            ) from None
    preset = weights.transforms()
    if not train or not isinstance(preset, ImageClassification):
        return preset
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(preset.crop_size, interpolation=preset.interpolation),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(preset.mean, preset.std),
        ]
    )


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("disk", "square", "triangle"),
    n_per_class: int = 8,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """Write a tiny ImageFolder of generated shape images as PNG files.

    Why: to try the own-images pipeline (and to test it) without collecting photos first.

    Args:
        root: folder to write into (created if needed); files are `root/<class>/<class>_<i>.png`.
        classes: shape names from `ftlib.data.synthetic.SHAPES`, one sub-folder each.
        n_per_class: images per class.
        size: width and height of the images in pixels.
        seed: seed of the generator; the same arguments write the same images.

    Returns:
        `root` as a `Path`.

    Raises:
        ValueError: for an unknown shape name or an invalid count or size (see `render_shapes`).
    """
    root = Path(root)
    images, labels = render_shapes(classes, n_per_class, seed=seed, size=size).tensors
    pixels = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for index, (image, label) in enumerate(zip(pixels, labels.tolist(), strict=True)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{classes[label]}_{index // len(classes):03d}.png")
    return root
