"""Benchmark: seconds per epoch of state (2) training, with and without feature caching.

A torchvision ResNet-18 (random weights: the speed does not depend on them, and nothing is
downloaded) gets a new 10-class head and a frozen body, then trains its head on a few hundred
fixed random images, once with ``ftlib.fit`` (the body runs every epoch) and once with
``ftlib.fit_head_cached`` (the body runs once). Prints a table and writes the numbers, the
machine and the date to bench/results/feature_cache.json.

    .venv/bin/python bench/feature_cache.py            # about a minute on 2 CPU cores
    .venv/bin/python bench/feature_cache.py --images 512 --size 128 --epochs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchvision
from machine import describe_machine, write_results
from torch.utils.data import DataLoader, TensorDataset

from ftlib.seeding import seed_everything
from ftlib.surgery.states import prepare
from ftlib.training import History, fit
from ftlib.training.caching import fit_head_cached

RESULTS = Path(__file__).parent / "results" / "feature_cache.json"
NUM_CLASSES = 10


def _dataset(images: int, size: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(images, 3, size, size, generator=generator)
    return TensorDataset(inputs, torch.arange(images) % NUM_CLASSES)


def _run(cached: bool, dataset: TensorDataset, args: argparse.Namespace) -> dict:
    """Train the head once; return per-epoch seconds, the one-off extraction time and the head."""
    seed_everything(0)
    model = torchvision.models.resnet18(weights=None)
    prepare(model, "head", num_classes=NUM_CLASSES)
    generator = seed_everything(1)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, generator=generator)
    trainer = fit_head_cached if cached else fit
    start = time.perf_counter()
    history: History = trainer(model, loader, epochs=args.epochs, device="cpu", progress=False)
    total = time.perf_counter() - start
    epochs = history.column("seconds")
    return {
        "seconds_per_epoch": epochs,
        "median_seconds_per_epoch": statistics.median(epochs),
        "setup_seconds": total - sum(epochs),  # extraction for the cached run
        "total_seconds": total,
        "head": model.fc.weight.detach().clone(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="number of training images")
    parser.add_argument("--size", type=int, default=96, help="image height and width (pixels)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    dataset = _dataset(args.images, args.size)
    uncached = _run(False, dataset, args)
    cached = _run(True, dataset, args)
    speedup = uncached["median_seconds_per_epoch"] / cached["median_seconds_per_epoch"]
    saved_per_epoch = uncached["median_seconds_per_epoch"] - cached["median_seconds_per_epoch"]
    head_difference = (uncached.pop("head") - cached.pop("head")).abs().max().item()

    print(
        f"ResNet-18, {args.images} images {args.size}x{args.size}, batch {args.batch_size}, "
        f"{args.epochs} epochs, CPU, {torch.get_num_threads()} threads"
    )
    print(f"{'':<10}{'s/epoch (median)':>18}{'one-off s':>11}{'total s':>9}")
    for name, run in (("uncached", uncached), ("cached", cached)):
        print(
            f"{name:<10}{run['median_seconds_per_epoch']:>18.4f}"
            f"{run['setup_seconds']:>11.2f}{run['total_seconds']:>9.2f}"
        )
    print(f"speed-up per epoch: {speedup:.0f}x")
    print(
        f"extraction pays for itself after {cached['setup_seconds'] / saved_per_epoch:.2f} epochs"
    )
    print(f"largest difference between the two trained heads: {head_difference:.2e}")

    results = {
        "benchmark": "feature_cache",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "setup": {
            "model": "torchvision resnet18(weights=None), new 10-class head, body frozen",
            "images": args.images,
            "image_size": args.size,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "device": "cpu",
        },
        "uncached": uncached,
        "cached": cached,
        "speedup_per_epoch": speedup,
        "break_even_epochs": cached["setup_seconds"] / saved_per_epoch,
        "max_abs_head_difference": head_difference,
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
