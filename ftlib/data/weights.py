"""torchvision's pretrained weights and datasets from local files: never a surprise download.

torchvision downloads weights and datasets on first use, which fails offline with an unhelpful
network error and is not allowed in the lessons. These wrappers look for the files where torchvision
would put them and, when a file is missing, say exactly which file to put where and where to get
it; they download only when you ask them to.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
import json
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


class WeightsHashError(WeightsNotFoundError):
    """The file where the weights belong is not them: its hash differs from the one in its name.

    A subclass of ``WeightsNotFoundError``, because the right weights are still not there: code
    that falls back when weights are missing falls back here too.
    """


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
    _check_architecture(arch)
    enum = torchvision.models.get_model_weights(arch)
    try:
        return enum.verify(weights)
    except (KeyError, TypeError):
        names = ["DEFAULT", *(member.name for member in enum)]
        raise ValueError(f"unknown weights {weights!r} for {arch}; choose one of {names}") from None


def _check_architecture(arch: str) -> None:
    models = _classification_models()
    if arch not in models:
        close = difflib.get_close_matches(arch, models, n=3)
        raise ValueError(
            f"unknown torchvision classification model {arch!r}; close names: {close}. "
            "All names: torchvision.models.list_models(module=torchvision.models)"
        )


def weights_path(weights: WeightsEnum) -> Path:
    """Where torch hub caches `weights`: `torch.hub.get_dir()/checkpoints/<file name of the URL>`.

    The hub folder is `$TORCH_HOME/hub` (by default `~/.cache/torch/hub`).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def pretrained_torchvision(
    arch: str,
    weights: WeightsEnum | str = "DEFAULT",
    *,
    allow_download: bool = False,
    check_hash: bool = True,
) -> nn.Module:
    """A torchvision classification model with pretrained weights read from the torch hub cache.

    Why: lessons and tests must run offline, so a missing file is an error that says how to fix it
    rather than a download; the file is read with `torch.load(weights_only=True)`, which refuses
    anything but tensors and plain containers (a weights file cannot run code).

    Args:
        arch: a torchvision classification model name, e.g. "resnet18".
        weights: the weights (member or name, see `resolve_weights`); "DEFAULT" is the best ones.
        allow_download: download the file into the cache when it is missing (needs a network).
        check_hash: verify the file against the hash in its name (``verify_hash``); False only
            for a file you made yourself and saved under that name.

    Returns:
        The model in eval mode, on the CPU, exactly as `torchvision.models.get_model(arch,
        weights=weights)` would build it.

    Raises:
        ValueError: for an unknown architecture or weights name.
        WeightsNotFoundError: if the file is not in the cache and `allow_download` is False, or
            the download fails; the message gives the path to put it at and the URL to get it
            from.
        WeightsHashError: the cached file's SHA-256 does not start with the hash in its name
            (torch hub's convention, ``resnet18-f37072fd.pth``): a truncated download or another
            file. The verdict is remembered beside the file (``<file>.sha256``, keyed by size
            and modification time), so each file is hashed once, not on every start-up.
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
    if check_hash:
        verify_hash(path, weights.url)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    for key in list(state_dict):  # in place: keeps the version metadata some modules read
        state_dict[_LEGACY_DENSENET_KEY.sub(r"\1\2", key)] = state_dict.pop(key)
    model = _built_for(arch, weights)
    model.load_state_dict(state_dict)
    _drop_aux_heads(model, arch)
    return model.eval()


def torchvision_architecture(arch: str, weights: WeightsEnum | str | None = None) -> nn.Module:
    """torchvision's ``arch`` built as ``weights`` need it, with fresh random values.

    Why: a model fine-tuned from pretrained weights is rebuilt from two names before its own
    checkpoint is loaded into it; nothing is read from the hub cache for that.

    Args:
        arch: a torchvision classification model name, e.g. "resnet18".
        weights: the weights whose architecture to build (member or name, see
            `resolve_weights`): their number of classes and the options some builders change
            for them (GoogLeNet, Inception v3, a ViT's image size), exactly as
            `pretrained_torchvision` builds it. None: torchvision's default configuration.

    Returns:
        The model, randomly initialised, on the CPU, in train mode.

    Raises:
        ValueError: for an unknown architecture or weights name.
    """
    if weights is None:
        _check_architecture(arch)
        return torchvision.models.get_model(arch, weights=None)
    weights = resolve_weights(arch, weights)
    model = _built_for(arch, weights)
    _drop_aux_heads(model, arch)
    return model


def _built_for(arch: str, weights: WeightsEnum) -> nn.Module:
    return torchvision.models.get_model(
        arch,
        weights=None,
        num_classes=len(weights.meta["categories"]),
        **_PRETRAINED_KWARGS.get(arch, {}),
        **_size_kwargs(arch, weights),
    )


def verify_hash(path: str | Path, url: str | None = None) -> None:
    """Check that the SHA-256 of ``path`` starts with the hash prefix in its file name.

    Why: torch hub names weights files ``<name>-<first hex digits of their SHA-256>.pth`` but
    checks the hash only while downloading; a file copied by hand, cut short or replaced loads
    without complaint and predicts nonsense. The verdict is stored beside the file
    (``<file>.sha256``) with the file's size and modification time, so an unchanged file is
    not hashed again; when that folder cannot be written, the file is hashed each time.

    Args:
        path: the weights file.
        url: where the right file comes from, for the error message.

    Raises:
        WeightsHashError: the hashes differ; the message says how to get the right file.
        FileNotFoundError: there is no file at ``path``.
    """
    path = Path(path)
    expected = torch.hub.HASH_REGEX.search(path.name)
    if expected is None:
        return  # a name without a hash prefix: nothing to check against
    prefix = expected.group(1)
    stat = path.stat()
    record = path.with_name(path.name + ".sha256")
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    digest = _recorded_digest(record, key)
    if digest is None:
        digest = _sha256(path)
        with contextlib.suppress(OSError):  # a read-only cache: hash again next time
            record.write_text(json.dumps({**key, "sha256": digest}))
    if not digest.startswith(prefix):
        source = f"download it again from\n  {url}\n" if url else "fetch the file again "
        raise WeightsHashError(
            f"{path} is not the file its name promises: its SHA-256 starts with {digest[:8]}, "
            f"not {prefix} ({stat.st_size:,} bytes; a cut-short download or another file). "
            f"Delete it and {source}(the download checks the hash), or put the right file there."
        )


def _recorded_digest(record: Path, key: dict[str, int]) -> str | None:
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or {k: saved.get(k) for k in key} != key:
        return None
    digest = saved.get("sha256")
    return digest if isinstance(digest, str) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
