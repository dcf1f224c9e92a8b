"""bench/gpu_check.py in its dry run: every check and the throughput measurement run on the CPU,
so the script a GPU will run cannot rot while no GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_check.py"
CHECKS = [
    "device",
    "non_blocking_copies",
    "autocast_bf16",
    "autocast_fp16_scaler",
    "channels_last",
    "cached_features",
    "fit_end_to_end",
    "cli",
    "throughput",
]


def test_dry_run_passes_every_check_and_measures_every_precision(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and list(report["checks"]) == CHECKS
    failed = {
        name: check.get("error") for name, check in report["checks"].items() if not check["ok"]
    }
    assert not failed
    checks = report["checks"]
    assert checks["autocast_bf16"]["output_dtype"] == "torch.bfloat16"
    assert not checks["autocast_bf16"]["scaler_enabled"]
    assert checks["autocast_fp16_scaler"]["output_dtype"] == "torch.float16"
    assert checks["autocast_fp16_scaler"]["loss_scale"] == 2.0**16
    assert checks["cached_features"]["largest_head_difference"] < 1e-3
    rates = checks["throughput"]["images_per_second"]
    assert sorted(rates) == sorted(
        f"{precision}{layout}"
        for precision in ("fp32", "bf16", "fp16")
        for layout in ("", " channels_last")
    )
    assert all(rate > 0 for rate in rates.values())


def test_without_a_gpu_the_full_run_says_to_use_the_dry_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "never.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        timeout=300,
    )
    assert done.returncode == 2 and "--dry-run" in done.stderr
    assert not (tmp_path / "never.json").exists()
