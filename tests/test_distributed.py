"""fit under real torchrun (2 processes, gloo, CPU) against one process on the same batches."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ftlib.training.checkpoint import checkpoint_extra

WORKER = Path(__file__).with_name("distributed_fit.py")


def _load_worker():
    spec = importlib.util.spec_from_file_location("distributed_fit", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker = _load_worker()


def torchrun() -> list[str]:
    """The torchrun of this Python's environment (the console script, else its module)."""
    script = Path(sys.executable).with_name("torchrun")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "torch.distributed.run"]


def run_torchrun(out: Path, processes: int) -> None:
    """Run the worker under torchrun with ``processes`` processes on the CPU."""
    out.mkdir()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [
        *torchrun(),
        "--standalone",
        f"--nproc_per_node={processes}",
        str(WORKER),
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists():
        pytest.skip("torchrun is not installed with this PyTorch")
    root = tmp_path_factory.mktemp("distributed")
    run_torchrun(root / "two", worker.PROCESSES)
    (root / "one").mkdir()
    worker.train(root / "one", reference=True)  # one process, here
    return root / "two", root / "one"


def ranks(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(worker.PROCESSES)]


def test_two_processes_train_the_model_one_process_trains_on_the_same_global_batch(runs):
    two, one = (torch.load(out / "result.pt") for out in runs)
    for name, tensor in one["state"].items():
        torch.testing.assert_close(two["state"][name], tensor, rtol=1e-4, atol=1e-5)
    for mine, reference in zip(two["history"]["epochs"], one["history"]["epochs"], strict=True):
        for key in reference:
            if key != "seconds":
                assert mine[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-6), key


def test_frozen_parameters_stay_frozen_under_ddp(runs):
    two = torch.load(runs[0] / "result.pt")
    reference = worker.model()
    for name in ("0.weight", "0.bias"):
        assert torch.equal(two["state"][name], reference.state_dict()[name])


def test_each_process_reads_its_own_share_and_all_return_the_same_history(runs):
    reports = ranks(runs[0])
    share = worker.SAMPLES // worker.PROCESSES
    assert all(len(report["train_read"]) == worker.EPOCHS * share for report in reports)
    for epoch in range(worker.EPOCHS):
        first, second = (set(r["train_read"][epoch * share : (epoch + 1) * share]) for r in reports)
        assert first.isdisjoint(second) and first | second == set(range(worker.SAMPLES))
    orders = [reports[0]["train_read"][epoch * share : (epoch + 1) * share] for epoch in (0, 1)]
    assert orders[0] != orders[1]  # a new order every epoch
    val_shares = [set(report["val_read"]) for report in reports]
    assert val_shares[0].isdisjoint(val_shares[1]) and len(val_shares[0] | val_shares[1]) == 40
    histories = [
        [{k: v for k, v in record.items() if k != "seconds"} for record in r["history"]["epochs"]]
        for r in reports
    ]
    assert histories[0] == histories[1]


def test_only_rank_zero_writes_the_run_checkpoint(runs):
    extra = checkpoint_extra(runs[0] / "run.pt")
    assert extra["epoch"] == worker.EPOCHS
    assert sorted(path.name for path in runs[0].iterdir()) == [
        "rank0.json",
        "rank1.json",
        "result.pt",
        "run.pt",
    ]


@pytest.mark.parametrize(("drop_last", "expected"), [(False, 6), (True, 5)])
def test_a_step_schedule_counts_the_batches_of_one_process(monkeypatch, drop_last, expected):
    """101 samples over 2 processes: 51 each (padded) or 50 (dropped), in batches of 10."""
    from torch.utils.data import DataLoader, TensorDataset

    from ftlib.training.distributed import batches_per_process

    loader = DataLoader(TensorDataset(torch.zeros(101, 2)), batch_size=10, drop_last=drop_last)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert batches_per_process(loader) == len(loader)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert batches_per_process(loader) == expected
