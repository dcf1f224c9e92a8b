"""What one grading kernel may use, and how each limit is enforced.

- memory and processes (tasks, threads included): a control group per kernel, created by the
  grading process under its own cgroup (v1 `memory` and `pids` controllers, or v2 where the
  grader's cgroup delegates them). Where no writable controller exists, memory falls back to an
  address-space limit (RLIMIT_AS) and processes are limited only by the kernel's pid namespace,
  which dies with the kernel, and by the cell timeout: RLIMIT_NPROC does not bind a process whose
  user is root outside the sandbox.
- CPU time (RLIMIT_CPU), file size (RLIMIT_FSIZE), open files (RLIMIT_NOFILE), no core dumps:
  resource limits set in the kernel before it starts.
- disk: the scratch folder, /tmp and /dev/shm are size-limited tmpfs mounts of the kernel alone.
- output: `outputs.py` caps every cell's outputs, in the kernel and again in the grader.

`describe()` says which of these are active on this machine.
"""

from __future__ import annotations

import contextlib
import resource
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-kernel limits; the defaults leave every lesson's solution several times the room it
    needs on a 2-core machine."""

    memory_bytes: int = 4096 * _MiB
    tasks: int = 512
    cpu_seconds: int = 1800
    file_bytes: int = 256 * _MiB
    open_files: int = 4096
    scratch_bytes: int = 512 * _MiB
    tmp_bytes: int = 512 * _MiB

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def apply_resource_limits(limits: dict[str, int], *, memory_fallback: bool) -> None:
    """Set the kernel's rlimits (in the kernel process, before it runs anything).

    Args:
        limits: `Limits.as_dict()`.
        memory_fallback: also cap the address space, because no memory cgroup holds the kernel.
    """
    cpu = limits["cpu_seconds"]
    # The soft limit sends SIGXCPU, the hard one SIGKILL a few seconds later.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_fallback:
        # Address space already mapped (shared libraries, the interpreter) does not count
        # against what the kernel may allocate.
        mapped = _mapped_bytes()
        cap = mapped + limits["memory_bytes"]
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _mapped_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class KernelCgroup:
    """The control groups that hold one kernel: created before it runs, removed after it died."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.folders: dict[str, Path] = {}
        for controller, parent in writable_controllers().items():
            folder = parent / name
            folder.mkdir()
            self.folders[controller] = folder
            if controller == "memory":
                _write(folder, ("memory.limit_in_bytes", "memory.max"), limits.memory_bytes)
                # No way around the limit through swap, where the machine has any.
                _write(folder, ("memory.memsw.limit_in_bytes",), limits.memory_bytes, quiet=True)
                _write(folder, ("memory.swap.max",), 0, quiet=True)
            else:
                _write(folder, ("pids.max",), limits.tasks)

    def add(self, pid: int) -> None:
        """Move process `pid` (and so everything it starts) into every group."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(pid))

    def out_of_memory(self) -> bool:
        """Whether the memory controller killed a process of this kernel."""
        folder = self.folders.get("memory")
        if folder is None:
            return False
        for name in ("memory.oom_control", "memory.events"):
            path = folder / name
            if path.is_file():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        return False

    def remove(self) -> None:
        """Remove the groups once their last process is gone (retried for a moment)."""
        for folder in self.folders.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # the kernel's last processes are still being reaped
        self.folders = {}


def _write(folder: Path, names: tuple[str, ...], value: int, *, quiet: bool = False) -> None:
    for name in names:
        if (folder / name).is_file():
            (folder / name).write_text(str(value))
            return
    if not quiet:
        raise FileNotFoundError(f"none of {names} in {folder}")


@cache
def writable_controllers() -> dict[str, Path]:
    """controller ("memory", "pids") -> the cgroup folder under which kernels' groups go.

    Only controllers where a child group can actually be created and removed are listed.
    """
    found: dict[str, Path] = {}
    for controller in ("memory", "pids"):
        for parent in _candidate_parents(controller):
            probe = parent / f"ftlib-probe-{time.monotonic_ns()}"
            try:
                probe.mkdir()
                probe.rmdir()
            except OSError:
                continue
            found[controller] = parent
            break
    return found


def _candidate_parents(controller: str) -> list[Path]:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    candidates = []
    for line in lines:
        _, names, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controller in names.split(","):  # cgroup v1
            candidates.append(_CGROUP_ROOT / controller / relative)
        elif names == "":  # cgroup v2: usable where our group delegates the controller
            folder = _CGROUP_ROOT / relative
            with contextlib.suppress(OSError):
                if controller in (folder / "cgroup.subtree_control").read_text().split():
                    candidates.append(folder)
    return candidates


def describe(limits: Limits) -> list[str]:
    """One line per limit: its value and how it is enforced here."""
    controllers = writable_controllers()
    memory = f"memory: {limits.memory_bytes // _MiB} MiB per kernel, " + (
        f"cgroup ({controllers['memory']})"
        if "memory" in controllers
        else "address-space limit RLIMIT_AS (no writable memory cgroup here)"
    )
    tasks = f"processes and threads: {limits.tasks} per kernel, " + (
        f"cgroup ({controllers['pids']})"
        if "pids" in controllers
        else "NOT limited in number (no writable pids cgroup here); they die with the kernel"
    )
    return [
        memory,
        tasks,
        f"CPU time: {limits.cpu_seconds} s per kernel, RLIMIT_CPU",
        f"file size: {limits.file_bytes // _MiB} MiB per file, RLIMIT_FSIZE",
        f"disk: scratch {limits.scratch_bytes // _MiB} MiB, /tmp {limits.tmp_bytes // _MiB} MiB"
        ", /dev/shm the same, size-limited tmpfs of the kernel alone",
        f"open files: {limits.open_files}, RLIMIT_NOFILE",
    ]
