"""Benchmark: ``ftlib.fit`` against the plain loop you would write by hand, on the same work.

Three workloads, each with the progress bar off and on:

- ``smallcnn-digits``: the lessons' SmallCNN on scikit-learn's digits (tiny steps: the loop's
  own overhead shows most here);
- ``resnet18-64px``: a torchvision ResNet-18 (random weights) on 64x64 images;
- ``image-files-2-workers``: PNG files decoded in ``__getitem__`` by a DataLoader with two
  worker processes (starting workers twice per epoch would show here).

The plain loop does what ``fit`` does: the same optimizer (AdamW over ``param_groups``), the
same model and batches, and it sums the loss and the top-1 hits per epoch on the device; with
the bar on it wraps the loader in ``tqdm``. A shared machine's speed can drift by tens of per cent
within seconds, more than the overhead measured, so the two loops run side by side: each in
its own thread, both on one CPU core, taking turns batch by batch from the same seeded start,
each turn timed. A pair is one such run of both (the plain loop taking the first turn in one
pair, fit in the next); its ratio is fit's throughput over the plain loop's (1.0: fit costs
nothing). The row reports the median pair, in wall time and in each thread's CPU time, and the
95 % interval of the mean pair. The digits run five times the epochs, to time more steps. One
torch thread by default, as the lessons use for small models. Prints a
table and writes bench/results/fit_vs_plain.json.

    .venv/bin/python bench/fit_vs_plain.py            # about 10 minutes on 2 CPU cores
    .venv/bin/python bench/fit_vs_plain.py --quick    # seconds: proves it runs
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


class Turns:
    """Two loops in two threads taking turns, one batch each, each turn timed.

    Why: a shared machine's speed can drift by tens of per cent from one second to the next, so two
    runs one after the other differ by more than fit's overhead. Taking turns batch by batch
    on the same CPU core, both loops run at the speed of the same moments.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._turn, self._finished = 0, [False, False]
        self._began = [(0.0, 0.0), (0.0, 0.0)]
        self.wall, self.cpu = [0.0, 0.0], [0.0, 0.0]

    def begin(self, who: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._turn == who or self._finished[1 - who])
        self._began[who] = (time.perf_counter(), time.thread_time())

    def end(self, who: int, *, finished: bool = False) -> None:
        wall, cpu = self._began[who]
        self.wall[who] += time.perf_counter() - wall
        self.cpu[who] += time.thread_time() - cpu
        with self._changed:
            self._finished[who] = finished
            self._turn = 1 - who
            self._changed.notify_all()

    def pass_on(self, who: int) -> None:
        self.end(who)
        self.begin(who)


class TurnTakingLoader(DataLoader):
    """A DataLoader that hands the turn to the other loop after each batch it yields."""

    def __init__(self, *args: Any, turns: Turns, who: int, **kwargs: Any) -> None:
        self.turns, self.who = turns, who
        super().__init__(*args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        for batch in super().__iter__():
            yield batch
            self.turns.pass_on(self.who)


def _workers_on_every_core(worker_id: int) -> None:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # only the two loops share one core


def side_by_side(
    workload: Workload, loops: list[Callable], epochs: int, progress: bool
) -> list[dict[str, float]]:
    """Samples per second of each loop, run in turns from the same seeded start.

    Both threads run on one CPU core (the loader workers on all of them); the Python garbage
    collector scans only what the runs allocate (``gc.freeze``), not the heap torch built
    before them, whose collections would land on whichever loop happened to trigger them.
    """
    turns, threads = Turns(), []
    for who, loop in enumerate(loops):
        seed_everything(0)
        model = workload.build()
        loader = TurnTakingLoader(
            workload.dataset,
            batch_size=workload.batch_size,
            shuffle=True,
            num_workers=workload.num_workers,
            worker_init_fn=_workers_on_every_core if workload.num_workers else None,
            generator=seed_everything(1),
            turns=turns,
            who=who,
        )

        def train(who: int = who, loop: Callable = loop, model=model, loader=loader) -> None:
            turns.begin(who)
            try:
                loop(model, loader, epochs, progress)
            finally:
                turns.end(who, finished=True)

        threads.append(threading.Thread(target=train))
    cores = os.sched_getaffinity(0)
    gc.collect()
    gc.freeze()
    os.sched_setaffinity(0, {min(cores)})
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.sched_setaffinity(0, cores)
        gc.unfreeze()
    samples = epochs * len(workload.dataset)
    return [
        {"wall": samples / wall, "cpu": samples / cpu}
        for wall, cpu in zip(turns.wall, turns.cpu, strict=True)
    ]


def compare(workload: Workload, progress: bool, epochs: int, repeats: int) -> dict:
    """Pairs of plain and fit runs side by side after one warm-up pair; the median pair.

    ``ratio`` compares wall time, what a user waits for; ``cpu_ratio`` the CPU time of each
    loop's thread (the loader workers' time is not in it). The plain loop takes the first turn
    in one pair, fit in the next.
    """
    epochs *= workload.epoch_scale
    side_by_side(workload, [plain_loop, fit_loop], 1, progress)  # allocator, kernels, files
    plain, ours = [], []
    for repeat in range(repeats):
        loops = [plain_loop, fit_loop] if repeat % 2 == 0 else [fit_loop, plain_loop]
        speeds = dict(zip(loops, side_by_side(workload, loops, epochs, progress), strict=True))
        plain.append(speeds[plain_loop])
        ours.append(speeds[fit_loop])
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
    # The loops' threads share one core; the loader workers do not, whatever DataLoader counts.
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=8, help="pairs of runs per row")
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
