"""A torchvision classifier built from its names, and rebuilt from them for its checkpoint.

A checkpoint holds weights, not code. To load one, the same architecture must be built first:
the model name, the weights it started from (some builders change the network for their
weights), the state it was trained in and its number of classes say everything needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ftlib.data.weights import pretrained_torchvision, torchvision_architecture
from ftlib.surgery.heads import swap_head
from ftlib.surgery.states import State
from ftlib.training.checkpoint import checkpoint_extra, load_checkpoint


def starting_model(arch: str, weights: str | None) -> nn.Module:
    """The model training starts from: ``arch`` with the pretrained ``weights`` (read from the
    torch hub cache and hash-checked), or randomly initialised when ``weights`` is None.

    Raises:
        ValueError: an unknown model or weights name (with close names).
        WeightsNotFoundError: the weights file is not in the cache (the message says where to
            put it and where to get it); WeightsHashError: the file there is not the weights.
    """
    if weights is None:
        return torchvision_architecture(arch)
    return pretrained_torchvision(arch, weights)


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a fine-tuned torchvision classifier.

    Attributes:
        arch: the torchvision model name, e.g. "resnet18".
        weights: the full name of the weights it started from ("ResNet18_Weights.IMAGENET1K_V1"),
            or None for random initial values.
        state: "predict", "head" or "full"; every state but "predict" has a new head.
        num_classes: outputs of the head.
        freeze_first: top-level blocks kept frozen in state "full".
    """

    arch: str
    weights: str | None
    state: str
    num_classes: int
    freeze_first: int = 0

    def rebuild(self) -> nn.Module:
        """The architecture of the trained model, randomly initialised, ready for its weights;
        nothing is read from the torch hub cache."""
        model = torchvision_architecture(self.arch, self.weights)
        if State.parse(self.state) is not State.PREDICT:
            swap_head(model, self.num_classes)
        return model

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return asdict(self)


def load_finetuned(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model saved by ``python -m ftlib finetune`` at ``path``, in eval mode, and the
    checkpoint's ``extra`` (classes, preprocessing, history).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is no checkpoint, or one that ``finetune`` did not write.
    """
    extra = checkpoint_extra(path)
    needed = ("model", "classes", "preprocessing")
    if not all(key in extra for key in needed):
        raise ValueError(
            f"{path} is an ftlib checkpoint but not one written by python -m ftlib finetune "
            f"(it lacks {', '.join(key for key in needed if key not in extra)}); load it in "
            "Python with ftlib.load_checkpoint into the model it was saved from"
        )
    model = ModelSpec(**extra["model"]).rebuild()
    load_checkpoint(model, path)
    return model.eval(), extra
