"""Make the pretrained checkpoints that ship in ftlib/assets/, reproducibly, on a CPU.

`python -m ftlib.models.pretrain` trains a `SmallCNN` on each source task and writes `<name>.pt`
(weights plus metadata: model arguments, training config, seed, measured source test accuracy).
The run is seeded and uses deterministic algorithms, so the same machine writes the same weights
every time; copy the accuracy it reports into `ftlib.models.PRETRAINED`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from ftlib.data.digits import digits_tasks
from ftlib.data.synthetic import make_shapes
from ftlib.models.small_cnn import SmallCNN, pretrained_info
from ftlib.seeding import seed_everything
from ftlib.training import evaluate, fit

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@dataclass(frozen=True)
class PretrainConfig:
    """How one shipped checkpoint is trained (all of it goes into the file's metadata).

    Attributes:
        epochs: passes over the source training set.
        batch_size: images per optimiser step.
        lr: learning rate of AdamW (ftlib.training.fit's default optimiser).
        seed: seeds the weights' initialisation and the shuffling.
        width: `SmallCNN` width.
        train_per_class, test_per_class: size of the synthetic source sets ("shapes" only).
    """

    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    width: int = 16
    train_per_class: int = 0
    test_per_class: int = 0


CONFIGS: dict[str, PretrainConfig] = {
    "digits": PretrainConfig(epochs=30, batch_size=32, lr=3e-3),
    "shapes": PretrainConfig(
        epochs=8, batch_size=64, lr=3e-3, train_per_class=600, test_per_class=200
    ),
}

# Seeds of the synthetic source sets; the test set is drawn independently of the training set.
_SHAPES_TRAIN_SEED, _SHAPES_TEST_SEED = 1000, 1001


def source_data(name: str) -> tuple[TensorDataset, TensorDataset]:
    """The (train, test) split of the source task that checkpoint `name` is trained on.

    Why: the stated source accuracy of a checkpoint is only checkable on exactly this test set.

    Raises:
        ValueError: for an unknown name, listing the names that exist.
    """
    pretrained_info(name)
    if name == "digits":
        tasks = digits_tasks()
        return tasks.source_train, tasks.source_test
    config = CONFIGS[name]
    train = make_shapes(config.train_per_class, task="source", seed=_SHAPES_TRAIN_SEED)
    test = make_shapes(config.test_per_class, task="source", seed=_SHAPES_TEST_SEED)
    return train, test


@contextmanager
def _deterministic(seed: int) -> Iterator[torch.Generator]:
    """Seed everything, require deterministic algorithms and use one CPU thread; restore after.

    One thread because a network this small gains nothing from more, and a fixed thread count
    keeps the order of floating-point sums, hence the weights, the same on every machine.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield seed_everything(seed, deterministic=True)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def pretrain(name: str, *, epochs: int | None = None) -> tuple[SmallCNN, dict[str, Any]]:
    """Train a `SmallCNN` on the source task of checkpoint `name`, on the CPU, deterministically.

    Why: the shipped weights must be reproducible from code, not a mystery file.

    Args:
        name: "digits" or "shapes" (a key of `ftlib.models.PRETRAINED`).
        epochs: override the configured number of epochs (e.g. 1 for a quick check).

    Returns:
        The trained model (eval mode) and its metadata: "name", "model" (SmallCNN arguments),
        "config" (a `PretrainConfig` as a dict), "classes" and "source_test_accuracy".
        The global random generators are left seeded by the run.

    Raises:
        ValueError: for an unknown name, listing the names that exist.
    """
    info = pretrained_info(name)
    config = CONFIGS[name]
    if epochs is not None:
        config = PretrainConfig(**{**asdict(config), "epochs": epochs})
    train, test = source_data(name)
    model_args = {
        "num_classes": len(info.classes),
        "in_channels": info.in_channels,
        "width": config.width,
    }
    with _deterministic(config.seed) as generator:
        model = SmallCNN(**model_args)
        loader = DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator)
        options: dict[str, Any] = {"device": "cpu", "amp": False, "topk": (1,), "progress": False}
        fit(model, loader, epochs=config.epochs, lr=config.lr, **options)
        accuracy = evaluate(model, DataLoader(test, batch_size=256), **options)["top1"]
    meta = {
        "name": name,
        "model": model_args,
        "config": asdict(config),
        "classes": list(info.classes),
        "source_test_accuracy": accuracy,
    }
    return model.eval(), meta


def save_pretrained(model: SmallCNN, meta: dict[str, Any], directory: Path = ASSETS) -> Path:
    """Write {"state_dict", "meta"} to `directory / "<name>.pt"` and return the path."""
    path = Path(directory) / f"{meta['name']}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: `python -m ftlib.models.pretrain [--name digits|shapes|all] [--out DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder to write <name>.pt to")
    args = parser.parse_args(argv)
    for name in CONFIGS if args.name == "all" else [args.name]:
        start = time.perf_counter()
        model, meta = pretrain(name)
        path = save_pretrained(model, meta, args.out)
        print(
            f"{name}: source test accuracy {meta['source_test_accuracy']:.4f}, "
            f"{path.stat().st_size / 1024:.1f} KB, {time.perf_counter() - start:.1f} s -> {path}"
        )


if __name__ == "__main__":
    main()
