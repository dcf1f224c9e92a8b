"""A fixture's value built once per test run, however many pytest-xdist workers ask for it."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]
) -> T:
    """`build(folder)`, run by the first worker that asks; the others get a copy of its result.

    Under `pytest -n` every worker sets up a module's fixtures itself, so a class graded in a
    fixture would be graded once per worker that runs one of its tests. The workers of a run
    share the parent of their temporary folders: the first to take the lock there builds into
    `folder` and pickles the result, the others wait for the lock and read it. Without xdist,
    the run's own temporary folder serves. A build that fails leaves no result: the next one to
    ask builds again.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, result = shared / name, shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            result.write_bytes(pickle.dumps(build(folder)))
        return pickle.loads(result.read_bytes())
