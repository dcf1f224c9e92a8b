"""Two related tasks from scikit-learn's bundled 8x8 digits, for transfer experiments offline.

The *source* task is digits 0-4 and the *target* task is digits 5-9 (relabelled 0-4): the same kind
of images, new classes. Pretrain on the source, then transfer to the target with little data
(`subset_per_class`). The images ship with scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

SOURCE_DIGITS = (0, 1, 2, 3, 4)
TARGET_DIGITS = (5, 6, 7, 8, 9)
_PIXEL_MAX = 16.0  # scikit-learn's digits count ink in 4x4 blocks: values 0..16


@dataclass(frozen=True)
class DigitsTasks:
    """Train and test splits of the source task (digits 0-4) and the target task (5-9 as 0-4).

    Every split is a `TensorDataset` of (images float32 (N, 1, 8, 8) in [0, 1], labels int64 0-4).
    """

    source_train: TensorDataset
    source_test: TensorDataset
    target_train: TensorDataset
    target_test: TensorDataset


@lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    # Imported here: scikit-learn takes a second to import and only this loader needs it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / _PIXEL_MAX, bunch.target.astype(np.int64)


def _split(
    images: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[TensorDataset, TensorDataset]:
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )

    def as_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y))

    return as_dataset(x_train, y_train), as_dataset(x_test, y_test)


def digits_tasks(*, test_fraction: float = 0.25, seed: int = 0) -> DigitsTasks:
    """Split the digits into a source task (0-4) and a target task (5-9, relabelled 0-4).

    Why: two tasks with the same kind of input but different classes is the smallest setting in
    which transfer learning can be measured; the target's labels start at 0 so a fresh 5-way head
    fits either task.

    Args:
        test_fraction: share of each task held out for testing, stratified by class.
        seed: seed of the split; the same seed always gives the same split.

    Returns:
        A `DigitsTasks` with four `TensorDataset`s of (N, 1, 8, 8) float32 images in [0, 1].

    Raises:
        ValueError: if `test_fraction` is not strictly between 0 and 1.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction} must lie strictly between 0 and 1")
    images, labels = _load_digits()
    is_source = labels < len(SOURCE_DIGITS)
    source = _split(images[is_source], labels[is_source], test_fraction, seed)
    target = _split(
        images[~is_source], labels[~is_source] - len(SOURCE_DIGITS), test_fraction, seed
    )
    return DigitsTasks(*source, *target)


def subset_per_class(dataset: Dataset, n_per_class: int, *, seed: int = 0) -> TensorDataset:
    """Take `n_per_class` random examples of every class, for "small target data" experiments.

    Args:
        dataset: a dataset of (input tensor, integer label) pairs, e.g. a split of `digits_tasks`.
        n_per_class: how many examples to keep for each class present in `dataset`.
        seed: seed of the random choice within each class.

    Returns:
        A `TensorDataset` of the chosen examples, classes interleaved (0, 1, ..., 0, 1, ...).

    Raises:
        ValueError: if `n_per_class` < 1 or some class has fewer than `n_per_class` examples.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class={n_per_class} must be at least 1")
    inputs, labels = _as_tensors(dataset)
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        if len(members) < n_per_class:
            raise ValueError(
                f"class {label} has only {len(members)} examples, fewer than "
                f"n_per_class={n_per_class}; ask for at most {len(members)}"
            )
        chosen.append(members[torch.randperm(len(members), generator=generator)[:n_per_class]])
    # Interleave the classes so that a prefix of the subset stays balanced.
    order = torch.stack(chosen, dim=1).flatten()
    return TensorDataset(inputs[order], labels[order])


def _as_tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0], dataset.tensors[1]
    pairs = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
    return torch.stack([x for x, _ in pairs]), torch.as_tensor([y for _, y in pairs])
