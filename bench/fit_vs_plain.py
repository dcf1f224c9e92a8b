"""Benchmark: ``ftlib.fit`` against the plain loop you would write by hand, on the same work.

Three workloads, each with the progress bar off and on:

- ``smallcnn-digits``: the lessons' SmallCNN on scikit-learn's digits (tiny steps: the loop's
  own overhead shows most here);
- ``resnet18-64px``: a torchvision ResNet-18 (random weights) on 64x64 images;
- ``image-files-2-workers``: PNG files decoded in ``__getitem__`` by a DataLoader with two
  worker processes (starting workers twice per epoch would show here).

The plain loop does what ``fit`` does: the same optimizer (AdamW over ``param_groups``), the
same model and batches, and it sums the loss and the top-1 hits per epoch on the device; with
the bar on it wraps the loader in ``tqdm``. After one warm-up run, each repeat runs the two
loops back to back, each with a fresh seeded model (plain first in one repeat, fit first in the
next, so that a machine slowing down or speeding up favours neither). The ratio of a pair is
fit's throughput over the plain loop's (1.0: fit costs nothing); the row reports the median
pair, in wall time and in CPU time, and the 95 % interval of the mean pair. An epoch of the
digits takes a tenth of a second, so that workload runs five times the epochs, to be timed
above the noise. One torch thread by default, as the lessons use for small models. Prints a
table and writes bench/results/fit_vs_plain.json.

    .venv/bin/python bench/fit_vs_plain.py            # a few minutes on 2 CPU cores
    .venv/bin/python bench/fit_vs_plain.py --quick    # seconds: proves it runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchvision
from machine import describe_machine, write_results
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms
from tqdm import tqdm

from ftlib.data import digits_tasks, image_folder, make_image_folder
from ftlib.models import SmallCNN
from ftlib.seeding import seed_everything
from ftlib.stats import compare_paired
from ftlib.training import fit
from ftlib.training.optim import param_groups

RESULTS = Path(__file__).parent / "results" / "fit_vs_plain.json"
LR = 1e-3


@dataclass
class Workload:
    """A model to build and a dataset to read, with the loader settings of the run."""

    name: str
    build: Callable[[], nn.Module]
    dataset: Dataset
    batch_size: int
    num_workers: int = 0
    epoch_scale: int = 1  # runs this many times the epochs asked for


def plain_loop(model: nn.Module, loader: DataLoader, epochs: int, progress: bool) -> list[dict]:
    """The hand-written loop; like fit, it records the loss and accuracy of each epoch."""
    optimizer = torch.optim.AdamW(param_groups(model, lr=LR, weight_decay=0.01))
    records = []
    for epoch in range(epochs):
        model.train()
        loss_sum, hits, seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
        batches = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False) if progress else loader
        for inputs, targets in batches:
            logits = model(inputs)
            loss = nn.functional.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(targets)
            hits += (logits.detach().argmax(dim=1) == targets).sum()
            seen += len(targets)
        records.append({"loss": loss_sum.item() / seen, "top1": hits.item() / seen})
    return records


def fit_loop(model: nn.Module, loader: DataLoader, epochs: int, progress: bool) -> list[dict]:
    """``ftlib.fit`` with its default optimizer (the same recipe)."""
    history = fit(model, loader, epochs=epochs, lr=LR, topk=(1,), device="cpu", progress=progress)
    return history.epochs


def run(workload: Workload, loop: Callable, epochs: int, progress: bool) -> dict[str, float]:
    """Samples per second of one fresh run, in wall time and in this process's CPU time."""
    seed_everything(0)
    model = workload.build()
    loader = DataLoader(
        workload.dataset,
        batch_size=workload.batch_size,
        shuffle=True,
        num_workers=workload.num_workers,
        generator=seed_everything(1),
    )
    wall, cpu = time.perf_counter(), time.process_time()
    loop(model, loader, epochs, progress)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    samples = epochs * len(workload.dataset)
    return {"wall": samples / wall, "cpu": samples / cpu}


def compare(workload: Workload, progress: bool, epochs: int, repeats: int) -> dict:
    """Pairs of plain and fit runs after one warm-up run; the median pair and its interval.

    ``ratio`` compares wall time, what a user waits for. ``cpu_ratio`` compares the main
    process's CPU time, which other programs on a busy machine disturb less (the worker
    processes' time is not in it).
    """
    epochs *= workload.epoch_scale
    run(workload, plain_loop, 1, progress)  # warm-up: allocator, kernels, file cache
    plain, ours = [], []
    for repeat in range(repeats):
        loops = [(plain, plain_loop), (ours, fit_loop)]
        for runs, loop in loops if repeat % 2 == 0 else loops[::-1]:
            runs.append(run(workload, loop, epochs, progress))
    ratios = {
        clock: [f[clock] / p[clock] for p, f in zip(plain, ours, strict=True)]
        for clock in ("wall", "cpu")
    }
    interval = compare_paired(ratios["wall"], [0.0] * repeats, names=("fit/plain", "zero"))
    return {
        "workload": workload.name,
        "progress_bar": progress,
        "epochs": epochs,
        "plain_samples_per_second": statistics.median(r["wall"] for r in plain),
        "fit_samples_per_second": statistics.median(r["wall"] for r in ours),
        "ratio": statistics.median(ratios["wall"]),
        "cpu_ratio": statistics.median(ratios["cpu"]),
        "mean_ratio_interval_95": [interval.low, interval.high],
        "pair_ratios": ratios["wall"],
        "runs": {"plain": plain, "fit": ours},
    }


def workloads(quick: bool, folder: Path) -> list[Workload]:
    digits = digits_tasks().target_train
    images = 64 if quick else 256
    generator = torch.Generator().manual_seed(0)
    random_images = TensorDataset(
        torch.randn(images, 3, 64, 64, generator=generator), torch.arange(images) % 10
    )
    files = image_folder(
        make_image_folder(folder, n_per_class=20 if quick else 150, size=32),
        transform=transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor()]),
    )
    return [
        Workload(
            "smallcnn-digits",
            lambda: SmallCNN(num_classes=5),
            digits,
            batch_size=32,
            epoch_scale=5,
        ),
        Workload(
            "resnet18-64px",
            lambda: torchvision.models.resnet18(num_classes=10),
            random_images,
            batch_size=32,
        ),
        Workload(
            "image-files-2-workers",
            lambda: SmallCNN(num_classes=3, in_channels=3),
            files,
            batch_size=32,
            num_workers=2,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs per row")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    epochs, repeats = (2, 2) if args.quick else (args.epochs, args.repeats)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workload in workloads(args.quick, Path(folder)):
            for progress in (False, True):
                rows.append(compare(workload, progress, epochs, repeats))
                row, bar = rows[-1], "on" if progress else "off"
                plain, ours = row["plain_samples_per_second"], row["fit_samples_per_second"]
                low, high = row["mean_ratio_interval_95"]
                print(
                    f"{workload.name:<24} bar {bar:<3}  plain {plain:8.0f}  fit {ours:8.0f} "
                    f"samples/s  ratio {row['ratio']:.3f} (CPU time {row['cpu_ratio']:.3f}; "
                    f"mean 95 % {low:.3f} to {high:.3f})"
                )
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "settings": {"epochs": epochs, "repeats": repeats, "quick": args.quick, "lr": LR},
        "goal": "ratio (the median pair) >= 0.97 everywhere",
        "rows": rows,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
