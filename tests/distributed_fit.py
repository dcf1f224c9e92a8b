"""One fit run for tests/test_distributed.py: under torchrun, or alone on the same global batch.

    torchrun --standalone --nproc_per_node=2 tests/distributed_fit.py OUT   # 2 x 16 per step
    python tests/distributed_fit.py OUT --reference                         # 1 x 32 per step

Rank 0 (or the single process) writes ``result.pt`` to OUT: the trained weights and history;
every rank writes ``rank<r>.json`` with the history it returned and the samples it trained on.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ftlib.seeding import seed_everything
from ftlib.surgery.freezing import freeze
from ftlib.training import fit
from ftlib.training.distributed import sampler_seed

SAMPLES, PER_PROCESS_BATCH, PROCESSES, EPOCHS = 96, 16, 2, 3


class Blobs(Dataset):
    """Three Gaussian blobs in 2-D; remembers which samples this process read."""

    def __init__(self, n: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.arange(n) % 3
        centres = torch.tensor([[3.0, 0.0], [-3.0, 3.0], [-3.0, -3.0]])
        self.inputs = centres[self.targets] + torch.randn(n, 2, generator=generator)
        self.read: list[int] = []

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.read.append(index)
        return self.inputs[index], self.targets[index]


def model() -> nn.Module:
    """An MLP whose first layer is frozen: DDP must not wait for its gradients."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    freeze(net, "0")
    return net


def train_loader(dataset: Dataset, reference: bool) -> DataLoader:
    """A shuffling loader; the reference reads the order a 2-process run would, in one batch."""
    loader = DataLoader(
        dataset, batch_size=PER_PROCESS_BATCH, shuffle=True, generator=seed_everything(1)
    )
    if not reference:
        return loader
    order = DistributedSampler(dataset, num_replicas=1, rank=0, seed=sampler_seed(loader))
    return DataLoader(dataset, batch_size=PROCESSES * PER_PROCESS_BATCH, sampler=order)


def train(out: Path, *, reference: bool) -> None:
    """Train, and write what the tests compare to ``out``."""
    rank = int(os.environ.get("RANK", "0"))
    train, val = Blobs(SAMPLES, seed=0), Blobs(40, seed=1)
    net = model()
    history = fit(
        net,
        train_loader(train, reference),
        epochs=EPOCHS,
        lr=1e-2,
        val_loader=DataLoader(val, batch_size=8),
        checkpoint=out / "run.pt",
        device="cpu",
        progress=rank == 0,
    )
    report = {"history": history.to_dict(), "train_read": train.read, "val_read": val.read}
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    if rank == 0:
        torch.save({"state": net.state_dict(), "history": history.to_dict()}, out / "result.pt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train(args.out, reference=args.reference)


if __name__ == "__main__":
    main()
