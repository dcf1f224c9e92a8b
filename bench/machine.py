"""What a benchmark ran on, recorded beside its numbers (timings mean little without it), and
writing those numbers to `bench/results/`."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch
import torchvision


def describe_machine() -> dict:
    """Platform, CPU count, torch threads, load average and library versions, as plain data."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }


def write_results(path: Path, results: dict) -> None:
    """Write a benchmark's results as indented JSON, creating the folder, and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")
