"""Training on several processes with PyTorch's DistributedDataParallel, started by torchrun.

``torchrun --nproc_per_node=N train.py`` starts N copies of a script and tells each its rank in
environment variables. ``fit`` reads them, joins the process group (NCCL on GPUs, gloo on
CPUs), and then does what DistributedDataParallel needs:

- every process sees its own share of the data (a ``DistributedSampler``, reshuffled each epoch
  with a seed all processes agree on); the batch size of the loader is per process, so N
  processes train on N times that batch per step;
- the model is wrapped after freezing, so frozen parameters are not expected to get gradients
  (the "parameters that were not used in producing loss" error of pytorch/pytorch#45325);
- losses and accuracies are summed over the processes, so every process records the same
  history; after every epoch all processes take rank 0's buffers (batch-norm statistics), so
  they evaluate the same model; only rank 0 shows progress and writes checkpoints.

Run as a plain script, nothing here does anything: one process is the whole world.
"""

from __future__ import annotations

import atexit
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)


@dataclass(frozen=True)
class World:
    """Which process this is, of how many. ``World()`` is the single-process world."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """More than one process trains together."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """The process that reports: progress bars, checkpoints, files."""
        return self.rank == 0


def current_world(device: torch.device | None = None) -> World:
    """The world this process belongs to, joining torchrun's process group on first use.

    Why: the same script runs alone or under torchrun; only the environment tells them apart.

    Args:
        device: where this process will train, which picks the backend of a group it joins:
            NCCL for CUDA, gloo otherwise. None: CUDA when there is a GPU.

    Returns:
        ``World()`` for a single process; under torchrun (``WORLD_SIZE`` above 1) the rank and
        size of an initialised process group.
    """
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _local_rank())
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not dist.is_available():
        raise RuntimeError(
            "WORLD_SIZE is set above 1 but this PyTorch build has no torch.distributed; run "
            "the script without torchrun, or install a PyTorch with distributed support"
        )
    on_gpu = device.type == "cuda" if device is not None else torch.cuda.is_available()
    backend = "nccl" if on_gpu else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(_local_rank())
    dist.init_process_group(backend=backend)
    atexit.register(_leave)
    return World(dist.get_rank(), dist.get_world_size(), _local_rank())


def batches_per_process(loader: Iterable[Any]) -> int:
    """How many batches of ``loader`` each process trains on in one epoch.

    Why: a schedule sized in steps (one-cycle, warm-up) must count the steps a process takes,
    which under torchrun is its share of the loader, not the whole loader. Reads the world
    from the process group or from ``WORLD_SIZE`` without joining a group.

    Raises:
        TypeError: the loader has no length.
    """
    if dist.is_available() and dist.is_initialized():
        size = dist.get_world_size()
    else:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or not isinstance(loader, DataLoader) or loader.batch_size is None:
        return len(loader)  # type: ignore[arg-type]
    if isinstance(loader.sampler, DistributedSampler):
        return len(loader)
    count = len(loader.dataset)  # type: ignore[arg-type]
    # DistributedSampler pads to a multiple of the world size, or drops the rest.
    share = count // size if loader.drop_last else math.ceil(count / size)
    return share // loader.batch_size if loader.drop_last else math.ceil(share / loader.batch_size)


def process_device(world: World, device: torch.device) -> torch.device:
    """This process's own GPU (``cuda:LOCAL_RANK``) when ``device`` is an unindexed CUDA."""
    if world.distributed and device.type == "cuda" and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` inside DistributedDataParallel, which averages gradients over the processes.

    Call it after freezing: DDP registers the parameters that require gradients when it is built.
    """
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def shard_for_training(loader: Iterable[Any], world: World) -> Iterable[Any]:
    """``loader`` rebuilt so that each process reads its own share of every epoch.

    Its shuffling becomes a ``DistributedSampler``'s, seeded with ``sampler_seed(loader)`` as
    drawn on rank 0; a loader that already has a ``DistributedSampler`` is kept as it is.

    Raises:
        ValueError: ``loader`` is not a DataLoader, or samples with a sampler that cannot be
            split between processes.
    """
    if not world.distributed:
        return loader
    loader = _data_loader(loader, "training")
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    _check_plain_sampler(loader)
    seed = torch.tensor([sampler_seed(loader)], device=_collective_device())
    dist.broadcast(seed, src=0)
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=world.size,
        rank=world.rank,
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=int(seed.item()),
        drop_last=loader.drop_last,
    )
    return _rebuilt(loader, sampler)


def shard_for_evaluation(loader: Iterable[Any], world: World) -> tuple[Iterable[Any], bool]:
    """(``loader`` split between the processes, whether it was split).

    Each process reads every ``size``-th sample from its rank on, in order: no sample is
    repeated (a DistributedSampler would pad), so summed counts are exact. Loaders that are not
    a DataLoader over a sequential sampler are left whole.
    """
    if not (world.distributed and isinstance(loader, DataLoader)):
        return loader, False
    if not isinstance(loader.sampler, SequentialSampler) or loader.batch_size is None:
        return loader, False
    return _rebuilt(loader, _Strided(len(loader.dataset), world), drop_last=False), True


def sum_over_processes(values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each of ``values`` summed over all processes (one all-reduce for all of them)."""
    flat = torch.stack([value.double() for value in values]).to(_collective_device())
    dist.all_reduce(flat)
    return [total.to(value.device, value.dtype) for total, value in zip(flat, values, strict=True)]


def broadcast_buffers(model: nn.Module, world: World) -> None:
    """Give every process rank 0's buffers (batch-norm running statistics), in place.

    Why: DistributedDataParallel copies rank 0's buffers to the others before each forward
    pass, so after an epoch's last step every process holds statistics of its own batches;
    validation, early stopping and the model rank 0 saves must all agree on one set.
    """
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def barrier(world: World) -> None:
    """Wait until every process got here (no-op for one process)."""
    if world.distributed:
        dist.barrier()


def sampler_seed(loader: DataLoader) -> int:
    """The shuffling seed a DistributedSampler gets for ``loader``: one draw from its generator.

    Why: with ``seed_everything(s)`` (or ``DataLoader(generator=...)``) the order is repeatable,
    as it is for one process; the draw uses the loader's generator, else the global one.
    """
    return int(torch.randint(2**31 - 1, (), generator=loader.generator))


def set_epoch(loader: Iterable[Any], epoch: int) -> None:
    """Tell a distributed sampler which epoch starts, so each epoch gets a new order."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


class _Strided(Sampler[int]):
    """Indices ``rank, rank + size, rank + 2 size, ...`` below ``length``."""

    def __init__(self, length: int, world: World) -> None:
        self.indices = range(world.rank, length, world.size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _data_loader(loader: Iterable[Any], purpose: str) -> DataLoader:
    if not isinstance(loader, DataLoader):
        raise ValueError(
            f"under torchrun the {purpose} data must come from a torch DataLoader, which fit "
            f"splits between the processes; got a {type(loader).__name__}"
        )
    return loader


def _check_plain_sampler(loader: DataLoader) -> None:
    if loader.batch_size is None or not isinstance(
        loader.sampler, (RandomSampler, SequentialSampler)
    ):
        raise ValueError(
            f"under torchrun fit splits the data with a DistributedSampler, but this loader "
            f"samples with {type(loader.sampler).__name__} (or its own batch_sampler); build it "
            "as DataLoader(dataset, batch_size=..., shuffle=...), or give it "
            "sampler=DistributedSampler(dataset) yourself"
        )


def _rebuilt(loader: DataLoader, sampler: Sampler[int], **changes: Any) -> DataLoader:
    """A DataLoader like ``loader`` (batching, workers, collation) drawing from ``sampler``."""
    options: dict[str, Any] = {
        "batch_size": loader.batch_size,
        "drop_last": loader.drop_last,
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn,
        "multiprocessing_context": loader.multiprocessing_context,
        "generator": loader.generator,
        "persistent_workers": loader.persistent_workers,
    }
    if loader.num_workers > 0:
        options["prefetch_factor"] = loader.prefetch_factor
    options.update(changes)
    return DataLoader(loader.dataset, sampler=sampler, **options)


def _collective_device() -> torch.device:
    """NCCL reduces tensors on this process's GPU, gloo on the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
