"""Benchmark: seconds per epoch of ``ftlib.fit`` under torchrun with 1 and 2 processes.

The same work both times: a ResNet-18 (random weights) trained on fixed random 64x64 images
with the same global batch (64 images a step: one process of 64, or two of 32, in the same
order), so the two runs train the same model up to float rounding; the largest differences of
the weights and of the epochs' training losses say how close (AdamW moves every weight by about
the learning rate per step whatever the size of its gradient, so a weight whose gradient is
rounding noise can drift by up to twice the rate per step). The ResNet normalises with group
norm, which works per image: batch norm would compute its statistics over each process's 32
images (PyTorch's DDP does not share them unless the model uses SyncBatchNorm). Each process
uses one CPU thread and gloo. Prints a table and writes bench/results/torchrun_epochs.json.

    .venv/bin/python bench/torchrun_epochs.py                 # a few minutes on 2 CPU cores
    .venv/bin/python bench/torchrun_epochs.py --images 128    # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchvision
from machine import describe_machine, write_results
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.seeding import seed_everything
from ftlib.training import fit

RESULTS = Path(__file__).parent / "results" / "torchrun_epochs.json"
GLOBAL_BATCH = 64


def train(out: Path, images: int, epochs: int) -> None:
    """One process's part of a run (under torchrun); rank 0 writes weights and epoch times."""
    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(images, 3, 64, 64, generator=generator), torch.arange(images) % 10
    )
    seed_everything(0)
    model = torchvision.models.resnet18(num_classes=10, norm_layer=_group_norm)
    # In order: fit gives rank r of 2 the samples r, r + 2, ... of each batch of 64.
    loader = DataLoader(data, batch_size=GLOBAL_BATCH // world)
    history = fit(model, loader, epochs=epochs, lr=1e-3, device="cpu", progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"state": model.state_dict(), "history": history.epochs}, out)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels)


def launch(processes: int, out: Path, args: argparse.Namespace) -> dict:
    """Run ``train`` under torchrun with ``processes`` processes; its result."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        __file__,
        "--worker",
        str(out),
        "--images",
        str(args.images),
        "--epochs",
        str(args.epochs),
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    subprocess.run(command, env=env, check=True, capture_output=True)
    return torch.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (first: warm-up)")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker is not None:
        train(args.worker, args.images, args.epochs)
        return
    with tempfile.TemporaryDirectory() as folder:
        runs = {n: launch(n, Path(folder) / f"{n}.pt", args) for n in (1, 2)}
    seconds = {n: [record["seconds"] for record in run["history"]] for n, run in runs.items()}
    per_epoch = {n: statistics.median(times[1:]) for n, times in seconds.items()}
    difference = max(
        (runs[2]["state"][name].float() - tensor.float()).abs().max().item()
        for name, tensor in runs[1]["state"].items()
    )
    losses = {n: [record["train_loss"] for record in run["history"]] for n, run in runs.items()}
    loss_difference = max(abs(a - b) for a, b in zip(losses[1], losses[2], strict=True))
    for n, median in per_epoch.items():
        print(f"{n} process{'es' if n > 1 else ''}: {median:.2f} s per epoch")
    print(
        f"speed-up {per_epoch[1] / per_epoch[2]:.2f}x; largest weight difference "
        f"{difference:.2e}; largest difference of an epoch's training loss {loss_difference:.2e}"
    )
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "settings": {"images": args.images, "epochs": args.epochs, "global_batch": GLOBAL_BATCH},
        "seconds_per_epoch": {str(n): times for n, times in seconds.items()},
        "train_loss_per_epoch": {str(n): values for n, values in losses.items()},
        "median_seconds_per_epoch": {str(n): median for n, median in per_epoch.items()},
        "speedup": per_epoch[1] / per_epoch[2],
        "largest_weight_difference": difference,
        "largest_train_loss_difference": loss_difference,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
