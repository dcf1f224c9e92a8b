"""Models that ship with ftlib: ``SmallCNN`` and its pretrained checkpoints, and the script that
makes them (``python -m ftlib.models.pretrain``)."""

from ftlib.models.small_cnn import (
    PRETRAINED,
    PretrainedInfo,
    SmallCNN,
    load_pretrained,
    pretrained_info,
    read_checkpoint,
)

__all__ = [
    "PRETRAINED",
    "PretrainedInfo",
    "SmallCNN",
    "load_pretrained",
    "pretrained_info",
    "read_checkpoint",
]
