"""Linux namespace, mount and capability calls that Python's standard library lacks (3.10+).

The fork server uses them in each forked kernel, before any of the kernel's own code runs, to give
it fresh namespaces and mounts and then take away every privilege it had.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_REMOUNT = 0x20
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_MOUNT_OPTION_FLAGS = {"nosuid": _MS_NOSUID, "nodev": _MS_NODEV, "noexec": _MS_NOEXEC}

_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522
_LAST_CAPABILITY = 63

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (`CLONE_NEW*` flags)."""
    _check(_libc.unshare(flags), "unshare")


def make_mounts_private() -> None:
    """Keep mounts made from now on out of the namespace this one was copied from."""
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")


def mount_tmpfs(target: str, size_bytes: int) -> None:
    """A fresh, empty tmpfs of at most `size_bytes` at `target`."""
    options = f"size={size_bytes},mode=0755".encode()
    flags = _MS_NOSUID | _MS_NODEV
    _check(_libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, options), f"tmpfs on {target}")


def bind_mount(source: str, target: str) -> None:
    """Show the tree at `source`, with the mounts below it, at `target` too (read-write until
    `remount_read_only`)."""
    flags = _MS_BIND | _MS_REC
    _check(_libc.mount(source.encode(), target.encode(), None, flags, None), f"bind {source}")


def mount_proc(target: str = "/proc") -> None:
    """A /proc of the calling process's pid namespace (call it from that namespace's pid 1)."""
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    _check(_libc.mount(b"proc", target.encode(), b"proc", flags, None), f"proc on {target}")


def remount_read_only(target: str, options: set[str]) -> None:
    """Make the mount at `target` read-only, keeping its nosuid/nodev/noexec `options`."""
    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
    for name, flag in _MOUNT_OPTION_FLAGS.items():
        if name in options:
            flags |= flag
    _check(_libc.mount(None, target.encode(), None, flags, None), f"remount {target} read-only")


def mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, file system type, mount options) of every mount this process sees."""
    found = []
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields, _, tail = line.partition(" - ")
            point, options = fields.split()[4], fields.split()[5]
            point = point.encode().decode("unicode_escape")  # \040 for a space, etc.
            found.append((point, tail.split()[0], set(options.split(","))))
    return found


def disable_user_namespaces() -> None:
    """Forbid new user namespaces in this one (what `bwrap --disable-userns` does).

    Needs CAP_SYS_RESOURCE in the current user namespace and a /proc of this namespace; a process
    without that capability cannot raise the limit again.
    """
    with open("/proc/sys/user/max_user_namespaces", "w") as limit:
        limit.write("0")


def drop_all_privileges() -> None:
    """Give up every capability for good: bounding, ambient, effective, permitted, inheritable.

    No later execve can give any back either (no_new_privs). Call it before the process starts
    threads: capabilities belong to each thread, and threads started later inherit the empty set.
    """
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    for capability in range(_LAST_CAPABILITY + 1):
        # EINVAL past the kernel's last capability: nothing to drop there.
        _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    no_capabilities = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, no_capabilities), "capset")


def make_undumpable() -> None:
    """Keep other processes of the same user from tracing this one or reading its memory."""
    _check(_libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def effective_capabilities() -> int:
    """The calling thread's effective capability mask (0 once privileges are dropped)."""
    with open("/proc/thread-self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise RuntimeError("no CapEff line in /proc/thread-self/status")
