"""The fork server: one sandboxed Python that imports the heavy libraries once and forks a fresh,
isolated kernel for every notebook.

    python -m ftlib_course.sandbox.zygote RUNTIME [MODULE ...]    (by `forkserver.ForkServer`)

Importing torch, torchvision, matplotlib, scikit-learn and IPython takes seconds; a forked
child has them at once (`preload.BASE`, and the MODULEs the lesson imports). The server never
runs a cell, starts a thread pool or opens a kernel socket, so every child starts from the same
clean state. For each request on `RUNTIME/fork.sock` it forks a helper that moves into new
mount, pid, network, IPC and UTS namespaces and forks their init, pid 1. The init:

1. mounts its own /proc, and fresh, size-limited tmpfs on the scratch folder (filled with the
   notebook's files), /tmp (the read-only folders under it bound back), /dev/shm and the socket
   folder; hides RUNTIME (the other kernels' inputs and the server's socket) under an empty
   tmpfs; makes every other mount read-only;
2. forbids new user namespaces, waits until the grader has put it in the kernel's control
   groups, sets the resource limits;
3. forks the kernel (pid 2), which gives up every capability for good and becomes the grading
   kernel (`kernel.main`); the init drops its own, passes signals on, and reports the kernel's
   wait status when it ends.

The helper reports the init's pid to the grader (as socket credentials, which the operating
system translates into the grader's pid namespace), and its end if it was killed.
Nothing of one kernel survives it: its namespaces and mounts die with it, the next kernel forks
from the untouched server.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import sys
import traceback
from pathlib import Path

from ftlib_course.sandbox import kernel, limits, namespaces
from ftlib_course.sandbox.layout import SCRATCH, SOCKETS
from ftlib_course.sandbox.preload import BASE

SERVER_SOCKET = "fork.sock"
CONNECTION_FILE = f"{SOCKETS}/kernel.json"
"""Where a forked kernel finds its connection file (written from the request)."""
EVIDENCE_FD = 3
SOCKET_FOLDER_BYTES = 1 << 20


_NAMESPACES = (
    namespaces.CLONE_NEWNS
    | namespaces.CLONE_NEWPID
    | namespaces.CLONE_NEWNET
    | namespaces.CLONE_NEWIPC
    | namespaces.CLONE_NEWUTS
)
_LEFT_AS_THEY_ARE = frozenset(["proc", "sysfs", "devpts", "mqueue"])
_PASSED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def main(argv: list[str]) -> None:
    runtime = Path(argv[0])
    missing = _preload([*BASE, *argv[1:]])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # helpers are reaped by the system
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(str(runtime / SERVER_SOCKET))
    server.listen(16)
    print(json.dumps({"ready": True, "not_preloaded": missing}), flush=True)
    while True:
        # The grader holds our stdin: when it goes away, so do we (and all kernels with us).
        readable, _, _ = select.select([server, sys.stdin], [], [])
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
            return
        if server in readable:
            connection, _ = server.accept()
            with connection:
                _serve(server, connection)


def _preload(modules: list[str]) -> list[str]:
    missing = []
    for name in dict.fromkeys(modules):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _serve(server: socket.socket, connection: socket.socket) -> None:
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 1)
    try:
        if not message or len(fds) != 1:
            connection.send(json.dumps({"error": "a request needs a message and one fd"}).encode())
            return
        if os.fork() == 0:
            _helper(server, connection, json.loads(message), fds[0])
    finally:
        for fd in fds:
            os.close(fd)


def _helper(server: socket.socket, connection: socket.socket, request: dict, evidence: int):
    """In the forked helper: new namespaces, their init forked into them, its pid reported."""
    try:
        server.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        namespaces.unshare(_NAMESPACES)
        pid = os.fork()
        if pid == 0:
            _init(connection, request, evidence)
        credentials = struct.pack("3i", pid, os.getuid(), os.getgid())
        connection.sendmsg(
            [json.dumps({"pid": pid}).encode()],
            [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, credentials)],
        )
        os.close(evidence)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):  # killed before it could report the kernel's end
            connection.send(json.dumps({"status": status}).encode())
    except BaseException:
        _report_error(connection)
    finally:
        os._exit(0)


def _init(connection: socket.socket, request: dict, evidence: int) -> None:
    """In pid 1 of the new namespaces: isolate, then run the kernel as pid 2 and report its end.

    The kernel is not pid 1 itself because pid 1 ignores the signals it has no handler for, even
    those it sends itself (`os.kill(os.getpid(), ...)`, `abort`), unlike any other kernel. This
    init passes the grader's signals on to the kernel and ends, and with it the namespace and
    everything left in it, when the kernel ends.
    """
    try:
        _isolate(request)
        Path(CONNECTION_FILE).write_text(json.dumps(request["connection"]))
        if connection.recv(16) != b"go":
            os._exit(1)
        limits.apply_resource_limits(request["limits"], memory_fallback=request["no_memory_cgroup"])
        kernel_pid = os.fork()
        if kernel_pid == 0:
            _kernel(connection, request, evidence)
        os.close(evidence)
        for signum in _PASSED_SIGNALS:
            signal.signal(signum, lambda received, _: os.kill(kernel_pid, received))
        namespaces.drop_all_privileges()
        namespaces.make_undumpable()
    except BaseException:
        _report_error(connection)
        os._exit(70)
    while True:
        pid, status = os.waitpid(-1, 0)  # reaps orphans too, until the kernel ends
        if pid == kernel_pid:
            break
    with contextlib.suppress(OSError):
        connection.send(json.dumps({"status": status}).encode())
    os._exit(0)


def _kernel(connection: socket.socket, request: dict, evidence: int) -> None:
    """In the kernel, pid 2: only its own files, no privileges, then the grading kernel."""
    try:
        for signum in _PASSED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        os.dup2(evidence, EVIDENCE_FD)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for fd in {null, evidence, connection.detach()} - {0, 1, 2, EVIDENCE_FD}:
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(SCRATCH)
        _reseed()
        namespaces.drop_all_privileges()
    except BaseException:
        _report_error(connection)
        os._exit(70)
    try:
        kernel.main(request["argv"])
    finally:
        os._exit(0)


def _isolate(request: dict) -> None:
    namespaces.make_mounts_private()
    namespaces.mount_proc()
    namespaces.disable_user_namespaces()
    sizes = request["limits"]
    namespaces.mount_tmpfs(SCRATCH, sizes["scratch_bytes"])
    shutil.copytree(Path(request["job"]) / "files", SCRATCH, dirs_exist_ok=True)
    # Everything the server's world left writable becomes read-only for this kernel, before its
    # own writable mounts go on top.
    for point, kind, options in namespaces.mounts():
        if point == SCRATCH or kind in _LEFT_AS_THEY_ARE or point.startswith("/proc/"):
            continue
        if "ro" not in options:
            namespaces.remount_read_only(point, options)
    namespaces.mount_tmpfs(request["runtime"], 4096)  # hides the other kernels' inputs
    namespaces.remount_read_only(request["runtime"], {"nosuid", "nodev"})
    _fresh_tmp(sizes["tmp_bytes"], request["runtime"])
    namespaces.mount_tmpfs("/dev/shm", sizes["tmp_bytes"])
    namespaces.mount_tmpfs(SOCKETS, SOCKET_FOLDER_BYTES)


def _fresh_tmp(size_bytes: int, runtime: str) -> None:
    """A fresh, empty /tmp for this kernel that still shows the read-only folders the server
    has under /tmp (a course cloned there, its virtual environment): each is bound aside in the
    socket folder (mounted afresh after this), the new /tmp goes on, and they are bound back."""
    points = [
        point
        for point, _, options in namespaces.mounts()
        if point.startswith("/tmp/")
        and "ro" in options
        and point != runtime
        and not point.startswith(runtime + "/")
    ]
    outermost = [p for p in points if not any(p.startswith(q + "/") for q in points)]
    namespaces.mount_tmpfs(SOCKETS, SOCKET_FOLDER_BYTES)
    aside = []
    for number, point in enumerate(dict.fromkeys(outermost)):
        place = f"{SOCKETS}/{number}"
        os.mkdir(place)
        namespaces.bind_mount(point, place)
        aside.append((place, point))
    namespaces.mount_tmpfs("/tmp", size_bytes)
    for place, point in aside:
        os.makedirs(point, exist_ok=True)
        namespaces.bind_mount(place, point)
        namespaces.remount_read_only(point, {"nosuid", "nodev"})


def _reseed() -> None:
    # A fresh process would draw new seeds; a forked one inherits the server's generators.
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _report_error(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.send(json.dumps({"error": traceback.format_exc()[-2000:]}).encode())


if __name__ == "__main__":
    main(sys.argv[1:])
