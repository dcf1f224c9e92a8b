"""A project's images divided into training, validation and test sets.

Two layouts are read:

- ``DIR/<class>/<image>``: each class is divided at random in the same proportions (a
  stratified split), so every split holds every class; the seed fixes the division, so every
  run and every process of a ``torchrun`` sees the same one;
- ``DIR/train/<class>/...`` with ``DIR/val/...`` and ``DIR/test/...``: the splits as given; a
  missing ``val`` or ``test`` is carved out of ``train`` as above.

The validation split chooses (epochs, rates, states); the test split is looked at once, for
the final number, so that number is not flattered by the choices made on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ftlib.data.folders import image_folder

SPLITS = ("train", "val", "test")
"""The split names, training first."""

_MIN_CLASSES = 2


@dataclass(frozen=True)
class Splits:
    """Which labelled image files belong to which split.

    Attributes:
        root: the project folder.
        classes: class names, in label order (sorted folder names).
        files: for each of ``SPLITS``, the ``(path, label)`` pairs, in path order.
        given: the splits read from their own folders (the others were carved out of train).
    """

    root: Path
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]
    given: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        """Images per split."""
        return {split: len(pairs) for split, pairs in self.files.items()}

    def smallest_class(self, split: str = "train") -> int:
        """Images of the rarest class in ``split``: the size ``ftlib.recommend`` asks for."""
        labels = [label for _, label in self.files[split]]
        return min(labels.count(label) for label in range(len(self.classes)))

    def to_dict(self) -> dict[str, object]:
        """Plain data: the classes, and each split's files relative to ``root`` with classes."""
        return {
            "root": str(self.root),
            "classes": self.classes,
            **{
                split: [
                    {"path": str(path.relative_to(self.root)), "class": self.classes[label]}
                    for path, label in pairs
                ]
                for split, pairs in self.files.items()
            },
        }


def read_splits(
    root: str | Path, *, val_fraction: float, test_fraction: float, seed: int
) -> Splits:
    """The images under ``root`` in training, validation and test splits.

    Args:
        root: the project folder, in one of the two layouts of the module docstring.
        val_fraction, test_fraction: the share of each class to hold out for validation and
            for test where those splits are carved out of the training images (at least one
            image of each class each).
        seed: fixes the random division.

    Raises:
        FileNotFoundError: ``root`` does not exist, has no class folders, or a class folder
            has no images (the message shows the layout expected).
        ValueError: fewer than two classes, fractions outside (0, 1) or adding up to 1 or
            more, a class too small to split, or split folders with different classes.
    """
    root = Path(root)
    fractions = {"val": val_fraction, "test": test_fraction}
    for split, fraction in fractions.items():
        if not 0 < fraction < 1:
            raise ValueError(f"--{split}-fraction must be between 0 and 1, got {fraction}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"--val-fraction {val_fraction} and --test-fraction {test_fraction} leave no "
            "images to train on; keep their sum below 1 (0.15 each is common)"
        )
    given = _split_folders(root)
    folders = {split: image_folder(root / split if given else root) for split in given or ["train"]}
    classes = folders["train"].classes
    _check_classes(root, classes, {split: folder.classes for split, folder in folders.items()})
    files = {split: _pairs(folder.samples) for split, folder in folders.items()}
    missing = {split: fractions[split] for split in SPLITS[1:] if split not in files}
    files.update(_carve(files, missing, classes, seed))
    return Splits(root, classes, {split: files[split] for split in SPLITS}, tuple(given))


def _split_folders(root: Path) -> list[str]:
    """The split folders of a pre-split layout, training first; [] for one folder per class."""
    if not root.is_dir():
        return []  # image_folder says what is wrong
    names = {path.name for path in root.iterdir() if path.is_dir() and path.name[0] != "."}
    if "train" in names and names <= set(SPLITS):
        return [split for split in SPLITS if split in names]
    return []


def _check_classes(root: Path, classes: list[str], per_split: Mapping[str, list[str]]) -> None:
    if len(classes) < _MIN_CLASSES:
        raise ValueError(
            f"{root} has {len(classes)} class folder ({', '.join(classes)}); a classifier "
            f"needs at least {_MIN_CLASSES}: put the images of each class in a folder of its own"
        )
    for split, names in per_split.items():
        if names != classes:
            only_train = sorted(set(classes) - set(names))
            only_here = sorted(set(names) - set(classes))
            raise ValueError(
                f"{root / split} has other classes than {root / 'train'}: missing "
                f"{only_train or 'none'}, extra {only_here or 'none'}; every split needs a "
                "folder for each class"
            )


def _pairs(samples: Sequence[tuple[str, int]]) -> list[tuple[Path, int]]:
    return sorted((Path(path), label) for path, label in samples)


def _carve(
    files: dict[str, list[tuple[Path, int]]],
    fractions: Mapping[str, float],
    classes: list[str],
    seed: int,
) -> dict[str, list[tuple[Path, int]]]:
    """Move ``fractions`` of each class from the training files to new splits (stratified)."""
    if not fractions:
        return {}
    generator = torch.Generator().manual_seed(seed)
    carved: dict[str, list[tuple[Path, int]]] = {"train": [], **{split: [] for split in fractions}}
    for label, name in enumerate(classes):
        members = [pair for pair in files["train"] if pair[1] == label]
        order = [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
        taken = {
            split: max(1, round(fraction * len(members))) for split, fraction in fractions.items()
        }
        if sum(taken.values()) >= len(members):
            raise ValueError(
                f"class {name!r} has {len(members)} training images, too few to hold out "
                f"{' and '.join(f'{n} for {split}' for split, n in taken.items())} and train "
                f"on the rest; add images to {name!r} (a handful per class at the very least)"
            )
        start = 0
        for split, count in taken.items():
            carved[split] += order[start : start + count]
            start += count
        carved["train"] += order[start:]
    return {split: sorted(pairs) for split, pairs in carved.items()}
