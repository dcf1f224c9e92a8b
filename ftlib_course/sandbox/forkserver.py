"""The grader's side of the fork server: started once, it forks one sandboxed kernel per notebook.

`ForkServer` starts the server and owns it; `ForkServerClient.spawn` (any process of the grading
run may ask) returns a `ForkedKernel`, which behaves like the `subprocess.Popen` of a kernel
(`pid`, `poll`, `wait`, `send_signal`, `kill`), so jupyter_client's local provisioner can manage
it. Signals go through a pidfd, which cannot reach another process once the kernel's pid is
reused. One server serves a whole grading run (`shared_fork_server`): the command that grades a
class starts it and its worker processes `attach` to it, so the heavy imports happen once, while
the rest starts up; it dies with the process that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ftlib_course.sandbox import layout
from ftlib_course.sandbox.limits import KernelCgroup, Limits, writable_controllers
from ftlib_course.sandbox.zygote import SERVER_SOCKET

START_TIMEOUT = 180.0
"""Seconds the server may take to import everything (a cold disk on a slow machine)."""

_RUNTIME_PREFIX = "ftlib-sandbox-"
_OWNER_FILE = "owner.pid"
_LOG_FILE = "server.log"
_SERVER_MODULE = "ftlib_course.sandbox.zygote"


class SandboxError(RuntimeError):
    """The sandbox could not be started or could not start a kernel."""


class ForkServerClient:
    """Asks a running fork server for kernels; usable from any process of the grading run.

    Args:
        runtime: the server's runtime folder (its socket, the kernels' inputs, its log).
        pid: the server's process, to tell whether it still runs.
    """

    def __init__(self, runtime: Path, pid: int) -> None:
        self.runtime, self.pid = runtime, pid
        self._ids = itertools.count(1)

    @property
    def address(self) -> tuple[Path, int]:
        """What another process passes to `attach` to use this server."""
        return self.runtime, self.pid

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, and is not ours to signal
        return True

    def log_tail(self, size: int = 3000) -> str:
        """The end of what the server wrote to stderr."""
        try:
            with open(self.runtime / _LOG_FILE, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - size))
                return log.read().decode(errors="replace")
        except OSError as error:
            return f"(no log: {error})"

    def spawn(
        self,
        *,
        argv: list[str],
        connection_info: dict,
        env: dict[str, str],
        files: dict[str, Path],
        evidence_fd: int,
        limits: Limits,
    ) -> ForkedKernel:
        """Fork one kernel.

        Args:
            argv: the kernel's arguments (`kernel.main`'s), its connection file being
                `zygote.CONNECTION_FILE`.
            connection_info: the contents of that file (with the kernel's own paths).
            env: its whole environment.
            files: name in its scratch folder -> file on this machine to copy there.
            evidence_fd: the kernel's end of the evidence channel (the kernel gets it as fd 3).
            limits: what the kernel may use.

        Raises:
            SandboxError: if the server is gone or the kernel could not be forked.
        """
        job = self.runtime / "jobs" / f"{os.getpid()}-{next(self._ids)}"
        _copy_files(files, job / "files", limits.scratch_bytes)
        controllers = writable_controllers()
        request = {
            "argv": argv,
            "connection": connection_info,
            "env": env,
            "job": str(job),
            "runtime": str(self.runtime),
            "limits": limits.as_dict(),
            "no_memory_cgroup": "memory" not in controllers,
        }
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        connection.settimeout(30)
        try:
            self._connect(connection)
            socket.send_fds(connection, [json.dumps(request).encode()], [evidence_fd])
            message, ancillary, _, _ = connection.recvmsg(1 << 16, socket.CMSG_SPACE(12))
        except OSError as error:
            connection.close()
            raise SandboxError(f"the fork server is gone ({error}):\n{self.log_tail()}") from None
        reply = json.loads(message or b"{}")
        if "pid" not in reply or not ancillary:
            connection.close()
            raise SandboxError(f"no kernel was forked: {reply.get('error', reply)}")
        pid = struct.unpack("3i", ancillary[0][2][:12])[0]  # translated to our pid namespace
        kernel = ForkedKernel(connection, pid, job)
        if controllers:
            kernel.cgroup = KernelCgroup(f"ftlib-kernel-{os.getpid()}-{job.name}", limits)
            kernel.cgroup.add(pid)
        connection.send(b"go")
        return kernel

    def _connect(self, connection: socket.socket) -> None:
        """Connect to the server's socket, waiting while a server that still runs starts up."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                connection.connect(str(self.runtime / SERVER_SOCKET))
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if not self.alive() or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class ForkServer(ForkServerClient):
    """A fork server in its sandbox, started and owned by this process.

    Args:
        preload: modules to import besides `preload.BASE` (those of the lesson it grades).
        wait: wait until the server has imported everything and listens (else `spawn` waits
            for it, and its start overlaps whatever the caller does meanwhile).
    """

    def __init__(self, *, preload: Sequence[str] = (), wait: bool = True) -> None:
        self.owner = os.getpid()
        _remove_stale_runtimes()
        runtime = Path(tempfile.mkdtemp(prefix=_RUNTIME_PREFIX)).resolve()
        (runtime / "jobs").mkdir()
        (runtime / _OWNER_FILE).write_text(str(self.owner))
        program = [str(layout.python_executable()), "-m", _SERVER_MODULE, str(runtime), *preload]
        command = layout.bubblewrap_command(runtime, program, layout.server_environment())
        self._started = time.perf_counter()
        with open(runtime / _LOG_FILE, "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        super().__init__(runtime, self.process.pid)
        self.info: dict | None = None
        self.start_seconds: float | None = None
        if wait:
            self.wait_until_ready()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_until_ready(self) -> dict:
        """What the server reported once ready (`ready`, `not_preloaded`).

        Raises:
            SandboxError: with the end of its log, if it did not start.
        """
        if self.info is not None:
            return self.info
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self._stop()
            tail = self.log_tail()  # before `close` removes the log
            self.close()
            raise SandboxError(f"the grading sandbox did not start:\n{tail}")
        self.info = json.loads(line)
        self.start_seconds = time.perf_counter() - self._started
        return self.info

    def close(self) -> None:
        """Stop the server and every kernel it forked; remove its files.

        Only the process that started the server does: a worker process forked from it inherits
        this object, but the server is not its own.
        """
        if os.getpid() != self.owner:
            return
        self._stop()
        shutil.rmtree(self.runtime, ignore_errors=True)

    def _stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def _remove_stale_runtimes() -> None:
    """Remove the folders of fork servers whose grading process died without cleaning up."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_RUNTIME_PREFIX}*"):
        try:
            os.kill(int((folder / _OWNER_FILE).read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge: no owner recorded, or one we may not signal


def _copy_files(files: dict[str, Path], folder: Path, limit: int) -> None:
    total = sum(path.stat().st_size for path in files.values())
    if total > limit:
        raise SandboxError(
            f"the notebook's folder holds {total / 2**20:.0f} MiB, more than the kernel's "
            f"scratch folder takes ({limit / 2**20:.0f} MiB); remove large files from it"
        )
    for name, path in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    folder.mkdir(parents=True, exist_ok=True)


class ForkedKernel:
    """A kernel forked by the server, managed like a `subprocess.Popen`.

    `pid` is the init of the kernel's namespaces: it passes signals on to the kernel, and its end
    (SIGKILL) ends the kernel and everything the kernel started.
    """

    stdin = stdout = stderr = None

    def __init__(self, connection: socket.socket, pid: int, job: Path) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.setup_error: str | None = None
        self.out_of_memory = False
        self.cgroup: KernelCgroup | None = None
        self._connection, self._job = connection, job
        self._pidfd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            ended, _, _ = select.select([self._pidfd], [], [], 0)
            if ended:
                self._finish()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the kernel (through its namespace's init, which passes signals on)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _finish(self) -> None:
        status = None
        self._connection.settimeout(5)
        for _ in range(4):  # the error of a failed start, then the status
            try:
                message = self._connection.recv(1 << 16)
            except ConnectionResetError:
                continue  # our unread "go" was discarded; the messages before it remain
            except OSError:
                break
            if not message:
                break
            reply = json.loads(message)
            self.setup_error = reply.get("error", self.setup_error)
            status = reply.get("status")
            if status is not None:
                break
        self.returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
        if self.cgroup is not None:
            self.out_of_memory = self.cgroup.out_of_memory()
            self.cgroup.remove()
        self._connection.close()
        os.close(self._pidfd)
        shutil.rmtree(self._job, ignore_errors=True)


_shared: list[ForkServer] = []
_attached: list[ForkServerClient] = []


def attach(runtime: Path, pid: int) -> None:
    """Let this process ask the server that another process of the grading run started."""
    _attached[:] = [ForkServerClient(runtime, pid)]


def shared_fork_server(preload: Sequence[str] = ()) -> ForkServerClient:
    """The fork server of this grading run: the one `attach` named while it runs, else this
    process's own, started on first use (importing `preload` too), and again if it died."""
    if _attached and _attached[0].alive():
        return _attached[0]
    if not _shared or _shared[0].owner != os.getpid() or not _shared[0].alive():
        _shared[:] = [ForkServer(preload=preload)]
        atexit.register(_shared[0].close)
    return _shared[0]
