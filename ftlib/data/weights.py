"""torchvision's pretrained weights and datasets from local files: never a surprise download.

torchvision downloads weights and datasets on first use, which fails offline with an unhelpful
network error and is not allowed in the lessons. These wrappers look for the files where torchvision
would put them and, when a file is missing, say exactly which file to put where and where to get
it; they download only when you ask them to.
"""

from __future__ import annotations

import difflib
import inspect
import re
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torch.utils.data import Dataset
from torchvision.models import WeightsEnum


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are not in the torch hub cache and downloading was not allowed."""


class DatasetNotFoundError(FileNotFoundError):
    """A torchvision dataset is not under its root folder and downloading was not allowed."""


# Builders that change the architecture for their pretrained weights; the same values as
# torchvision's own builders set (googlenet.py and inception.py), so the weights load strictly.
_PRETRAINED_KWARGS: dict[str, dict[str, bool]] = {
    "googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}
# GoogLeNet's auxiliary classifiers exist only to load its weights; its builder drops them after
# (Inception v3's builder keeps its AuxLogits by default, and so do we).
_AUX_HEADS = {"googlenet": ("aux1", "aux2")}


# DenseNet's published files still use the old key names ("denselayer1.norm.1.weight"); its
# builder renames them ("denselayer1.norm1.weight") before loading, and so do we.
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$"
)


def _classification_models() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


def resolve_weights(arch: str, weights: WeightsEnum | str = "DEFAULT") -> WeightsEnum:
    """The torchvision weights enum member for `arch` named by `weights`.

    Args:
        arch: a torchvision classification model name, e.g. "resnet18".
        weights: a member of the architecture's weights enum or its name ("DEFAULT",
            "IMAGENET1K_V1" or "ResNet18_Weights.IMAGENET1K_V1").

    Returns:
        The enum member, carrying its URL, transforms and metadata.

    Raises:
        ValueError: for an unknown architecture or weights name, listing the valid ones.
    """
    models = _classification_models()
    if arch not in models:
        close = difflib.get_close_matches(arch, models, n=3)
        raise ValueError(
            f"unknown torchvision classification model {arch!r}; close names: {close}. "
            "All names: torchvision.models.list_models(module=torchvision.models)"
        )
    enum = torchvision.models.get_model_weights(arch)
    try:
        return enum.verify(weights)
    except (KeyError, TypeError):
        names = ["DEFAULT", *(member.name for member in enum)]
        raise ValueError(f"unknown weights {weights!r} for {arch}; choose one of {names}") from None


def weights_path(weights: WeightsEnum) -> Path:
    """Where torch hub caches `weights`: `torch.hub.get_dir()/checkpoints/<file name of the URL>`.

    The hub folder is `$TORCH_HOME/hub` (by default `~/.cache/torch/hub`).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def pretrained_torchvision(
    arch: str, weights: WeightsEnum | str = "DEFAULT", *, allow_download: bool = False
) -> nn.Module:
    """A torchvision classification model with pretrained weights read from the torch hub cache.

    Why: lessons and tests must run offline, so a missing file is an error that says how to fix it
    rather than a download; the file is read with `torch.load(weights_only=True)`, which refuses
    anything but tensors and plain containers (a weights file cannot run code).

    Args:
        arch: a torchvision classification model name, e.g. "resnet18".
        weights: the weights (member or name, see `resolve_weights`); "DEFAULT" is the best ones.
        allow_download: download the file into the cache when it is missing (needs a network).

    Returns:
        The model in eval mode, on the CPU, exactly as `torchvision.models.get_model(arch,
        weights=weights)` would build it.

    Raises:
        ValueError: for an unknown architecture or weights name.
        WeightsNotFoundError: if the file is not in the cache and `allow_download` is False, or
            the download fails; the message gives the path to put it at and the URL to get it
            from.
    """
    weights = resolve_weights(arch, weights)
    path = weights_path(weights)
    if not path.is_file():
        if not allow_download:
            raise WeightsNotFoundError(
                f"weights {weights} for {arch} are not in the torch hub cache. Put the file at\n"
                f"  {path}\ndownloading it from\n  {weights.url}\n"
                f"(or call pretrained_torchvision({arch!r}, allow_download=True) while online). "
                "The cache folder follows $TORCH_HOME; see torch.hub.get_dir()."
            )
        _download(weights, path, arch)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    for key in list(state_dict):  # in place: keeps the version metadata some modules read
        state_dict[_LEGACY_DENSENET_KEY.sub(r"\1\2", key)] = state_dict.pop(key)
    model = torchvision.models.get_model(
        arch,
        weights=None,
        num_classes=len(weights.meta["categories"]),
        **_PRETRAINED_KWARGS.get(arch, {}),
        **_size_kwargs(arch, weights),
    )
    model.load_state_dict(state_dict)
    _drop_aux_heads(model, arch)
    return model.eval()


def _download(weights: WeightsEnum, path: Path, arch: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = torch.hub.HASH_REGEX.search(path.name)
    try:
        torch.hub.download_url_to_file(weights.url, str(path), digest.group(1) if digest else None)
    except OSError as error:  # URLError and socket errors are OSErrors
        raise WeightsNotFoundError(
            f"could not download weights {weights} for {arch} from {weights.url} ({error}). "
            f"Without a network, put the file at\n  {path}\nby hand."
        ) from error


def _size_kwargs(arch: str, weights: WeightsEnum) -> dict[str, Any]:
    # Vision transformers are built for one image size (their position embeddings); weights
    # trained at a larger size need the model built at that size, as torchvision's builder does.
    if arch.startswith("vit_"):
        return {"image_size": weights.meta["min_size"][0]}
    return {}


def _drop_aux_heads(model: nn.Module, arch: str) -> None:
    for name in _AUX_HEADS.get(arch, ()):
        setattr(model, name, None)
    if arch in _AUX_HEADS:
        model.aux_logits = False


# Datasets whose training split is not called "train".
_TRAIN_SPLIT = {"OxfordIIITPet": "trainval", "FGVCAircraft": "trainval"}


def torchvision_dataset(
    name: str,
    root: str | Path,
    *,
    train: bool = True,
    download: bool = False,
    transform: Any | None = None,
) -> Dataset:
    """A torchvision dataset from local files, with a clear error when they are missing.

    Args:
        name: class name in `torchvision.datasets`, e.g. "MNIST", "CIFAR10", "Flowers102".
        root: the folder the dataset lives in (torchvision's `root`).
        train: the training split (True) or the test split (False).
        download: download the files into `root` when missing (needs a network).
        transform: applied to each image, e.g. `weights.transforms()`.

    Returns:
        The torchvision dataset.

    Raises:
        ValueError: for an unknown dataset name (listing close names), or `train=False` for a
            dataset without splits.
        DatasetNotFoundError: if the files are not under `root` and `download` is False.
    """
    cls = getattr(torchvision.datasets, name, None)
    if name not in torchvision.datasets.__all__ or cls is None:
        close = difflib.get_close_matches(name, torchvision.datasets.__all__, n=3)
        raise ValueError(f"unknown torchvision dataset {name!r}; close names: {close}")
    kwargs: dict[str, Any] = {"download": download, "transform": transform}
    parameters = inspect.signature(cls).parameters
    if "train" in parameters:
        kwargs["train"] = train
    elif "split" in parameters:
        kwargs["split"] = _TRAIN_SPLIT.get(name, "train") if train else "test"
    elif not train:
        raise ValueError(f"{name} has no test split; split it with torch.utils.data.random_split")
    try:
        return cls(str(root), **kwargs)
    except (RuntimeError, FileNotFoundError) as error:
        if download:
            raise
        raise DatasetNotFoundError(
            f"{name} is not in {Path(root).resolve()} ({error}). Copy its files there, or call "
            f"torchvision_dataset({name!r}, {str(root)!r}, download=True) once while online"
        ) from error
