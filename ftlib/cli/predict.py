"""``python -m ftlib predict``: label image files with a model ``finetune`` trained.

The checkpoint carries all that is needed: the model's description (to rebuild it), its
weights, the class names and the preprocessing of its training images. Folders are searched
for images recursively; each image gets its most likely classes and their probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader
from torchvision.datasets.folder import IMG_EXTENSIONS

from ftlib.cli.architecture import load_finetuned
from ftlib.cli.images import ImageFiles, Preprocessing
from ftlib.training.loop import predict


def image_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named by ``inputs`` (files, or folders searched recursively), in the
    order given, each folder's in path order, none twice; hidden files and folders skipped.

    Raises:
        FileNotFoundError: an input does not exist, or a folder holds no images.
        ValueError: a file given by name is not an image (by its extension).
    """
    found: dict[Path, None] = {}
    for given in map(Path, inputs):
        if given.is_dir():
            images = sorted(
                path
                for path in given.rglob("*")
                if _is_image(path) and not any(part.startswith(".") for part in path.parts)
            )
            if not images:
                raise FileNotFoundError(
                    f"the folder {given} holds no images ({', '.join(IMG_EXTENSIONS)})"
                )
            found.update(dict.fromkeys(images))
        elif given.is_file():
            if not _is_image(given):
                raise ValueError(
                    f"{given} is not an image file; images end in {', '.join(IMG_EXTENSIONS)}"
                )
            found[given] = None
        else:
            raise FileNotFoundError(f"no image file or folder {given}")
    return list(found)


def predict_images(
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    *,
    top: int = 1,
    batch_size: int = 64,
    device: str | None = None,
    workers: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The ``top`` most likely classes of every image in ``inputs``, by the model in
    ``checkpoint`` (written by ``python -m ftlib finetune``).

    Returns:
        One row per image: ``path``, then ``class`` and ``probability`` (softmax), then
        ``class_2``, ``probability_2``, ... up to ``top`` (at most the number of classes).

    Raises:
        FileNotFoundError, ValueError: a missing checkpoint or image, a checkpoint that
            ``finetune`` did not write, a file that is no image.
    """
    model, extra = load_finetuned(checkpoint)
    files = image_files(inputs)
    transform = Preprocessing.from_dict(extra["preprocessing"]).evaluation()
    loader = DataLoader(ImageFiles(files, transform), batch_size=batch_size, num_workers=workers)
    probabilities = predict(model, loader, device=device, progress=progress).softmax(dim=1)
    classes = extra["classes"]
    values, indices = probabilities.topk(min(top, len(classes)), dim=1)
    rows = []
    for path, scores, picks in zip(files, values.tolist(), indices.tolist(), strict=True):
        row: dict[str, Any] = {"path": str(path)}
        for rank, (score, pick) in enumerate(zip(scores, picks, strict=True), start=1):
            suffix = "" if rank == 1 else f"_{rank}"
            row[f"class{suffix}"], row[f"probability{suffix}"] = classes[pick], score
        rows.append(row)
    return rows


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS
