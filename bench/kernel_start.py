"""Benchmark: how fast a grading kernel is ready to run a lesson, cold and forked.

A lesson's first cells import torch, torchvision, matplotlib and scikit-learn, which takes
seconds. Cold: a fresh `python3` kernel, then those imports. Forked: a kernel from the grading
sandbox's fork server, which imported them once (its own start-up is measured too, paid once per
grading process). Ready means the imports have returned. Writes bench/results/kernel_start.json.

    .venv/bin/python bench/kernel_start.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from machine import describe_machine, write_results

from ftlib_course.sandbox import layout, sandbox_problem
from ftlib_course.sandbox.evidence import EvidenceChannel
from ftlib_course.sandbox.forkserver import ForkServer
from ftlib_course.sandbox.limits import Limits
from ftlib_course.sandbox.manager import SandboxKernelManager

RESULTS = Path(__file__).parent / "results" / "kernel_start.json"
IMPORTS = "import torch, torchvision, matplotlib.pyplot, sklearn.datasets, ftlib"


async def ready_seconds(manager: AsyncKernelManager) -> float:
    """Seconds from starting `manager`'s kernel until it has run the lessons' imports."""
    started = time.perf_counter()
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=300)
        reply = await client.execute_interactive(IMPORTS, timeout=300)
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.perf_counter() - started
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def measure(repeats: int) -> dict:
    cold = [await ready_seconds(AsyncKernelManager(kernel_name="python3")) for _ in range(repeats)]
    started = time.perf_counter()
    server = ForkServer()
    server_seconds = time.perf_counter() - started
    forked = []
    try:
        for _ in range(repeats):
            channel = EvidenceChannel()
            manager = SandboxKernelManager(
                server=server,
                channel=channel,
                files={},
                env=layout.kernel_environment(),
                limits=Limits(),
                kernel_name="python3",
            )
            forked.append(await ready_seconds(manager))
            channel.close()
    finally:
        server.close()
    return {
        "cold_kernel_ready_s": round(statistics.median(cold), 2),
        "forked_kernel_ready_s": round(statistics.median(forked), 2),
        "fork_server_start_s": round(server_seconds, 2),
        "cold_runs_s": [round(value, 2) for value in cold],
        "forked_runs_s": [round(value, 2) for value in forked],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    problem = sandbox_problem()
    if problem:
        raise SystemExit(f"cannot measure forked kernels: {problem}")
    result = asyncio.run(measure(args.repeats))
    result["machine"] = describe_machine()
    result["measured"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    print(json.dumps(result, indent=2))
    write_results(RESULTS, result)


if __name__ == "__main__":
    main()
