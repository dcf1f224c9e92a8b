"""A small CNN that trains in seconds on a CPU, and the pretrained copies shipped with ftlib.

`SmallCNN` has the shape of the big ImageNet networks in miniature: named blocks (`block1`,
`block2`, `block3`) that turn an image into a feature vector, then one linear classifier `fc`.
Because the blocks are named, freezing, swapping the head and discriminative learning rates work on
it exactly as on a ResNet. `load_pretrained` gives one of two checkpoints pretrained on a source
task, so the lessons can transfer without training a network first.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int, pool: nn.Module) -> nn.Sequential:
    # No conv bias: the batch norm that follows has its own shift.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        pool,
    )


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks and a linear head, for 8x8 digits and 16x16 synthetic images.

    Each of `block1` and `block2` halves the image with max pooling; `block3` ends with a global
    average pool and a flatten, so the network accepts any image size of at least 4x4 and `fc`
    always sees `2 * width` features.

    Args:
        num_classes: outputs of the classifier `fc`.
        in_channels: 1 for grey images (digits), 3 for colour images (synthetic shapes).
        width: channels of `block1`; `block2` and `block3` have twice as many.
    """

    def __init__(self, num_classes: int = 5, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.block1 = _conv_block(in_channels, width, nn.MaxPool2d(2))
        self.block2 = _conv_block(width, 2 * width, nn.MaxPool2d(2))
        self.block3 = _conv_block(
            2 * width, 2 * width, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        )
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (N, in_channels, H, W) to logits (N, num_classes)."""
        return self.fc(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 2 * width) feature vectors that `fc` classifies."""
        return self.block3(self.block2(self.block1(x)))


@dataclass(frozen=True)
class PretrainedInfo:
    """What a shipped checkpoint was trained on and how well it does there.

    Attributes:
        name: key in `PRETRAINED` and file stem in ftlib/assets/.
        description: the source task in one line.
        in_channels: channels of the input images.
        image_size: height and width of the input images.
        classes: names of the source task's classes, in label order.
        source_test_accuracy: top-1 accuracy on the source task's test split (fraction in [0, 1]),
            measured by `python -m ftlib.models.pretrain` when it wrote the file.
    """

    name: str
    description: str
    in_channels: int
    image_size: int
    classes: tuple[str, ...]
    source_test_accuracy: float

    @property
    def filename(self) -> str:
        """File name of the checkpoint inside ftlib/assets/."""
        return f"{self.name}.pt"


PRETRAINED: dict[str, PretrainedInfo] = {
    "digits": PretrainedInfo(
        name="digits",
        description="scikit-learn digits 0-4 (1x8x8 grey images), see ftlib.data.digits_tasks",
        in_channels=1,
        image_size=8,
        classes=("0", "1", "2", "3", "4"),
        source_test_accuracy=0.9956,
    ),
    "shapes": PretrainedInfo(
        name="shapes",
        description="synthetic source shapes (3x16x16 colour images), see ftlib.data.make_shapes",
        in_channels=3,
        image_size=16,
        classes=("disk", "square", "triangle", "plus", "ring"),
        source_test_accuracy=1.0,
    ),
}


def pretrained_info(name: str) -> PretrainedInfo:
    """Look up a shipped checkpoint by name.

    Raises:
        ValueError: for an unknown name, listing the names that exist.
    """
    if name not in PRETRAINED:
        close = difflib.get_close_matches(name, PRETRAINED, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"no pretrained checkpoint named {name!r}; available: {sorted(PRETRAINED)}.{hint}"
        )
    return PRETRAINED[name]


def read_checkpoint(name: str) -> dict[str, Any]:
    """Read a shipped checkpoint file: {"state_dict": ..., "meta": {...}}.

    Why: the metadata (config, seed, measured accuracy) says how the weights were made, so a
    learner can reproduce them with `python -m ftlib.models.pretrain`.

    Raises:
        ValueError: for an unknown name, listing the names that exist.
        FileNotFoundError: if the package was installed without its assets.
    """
    info = pretrained_info(name)
    asset = resources.files("ftlib") / "assets" / info.filename
    if not asset.is_file():
        raise FileNotFoundError(
            f"checkpoint {info.filename} is missing from {asset}; regenerate it with "
            f"`python -m ftlib.models.pretrain --name {name}`"
        )
    with asset.open("rb") as file:
        return torch.load(file, map_location="cpu", weights_only=True)


def load_pretrained(name: str = "digits") -> SmallCNN:
    """A `SmallCNN` with the weights pretrained on the source task `name`.

    Args:
        name: a key of `PRETRAINED`: "digits" (digits 0-4, 1x8x8) or "shapes" (synthetic source
            shapes, 3x16x16).

    Returns:
        The model on the CPU in eval mode, its `fc` still classifying the 5 source classes.

    Raises:
        ValueError: for an unknown name, listing the names that exist.
    """
    checkpoint = read_checkpoint(name)
    model = SmallCNN(**checkpoint["meta"]["model"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
