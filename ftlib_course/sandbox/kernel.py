"""The grading kernel: an IPython kernel whose tamper evidence starts before the first cell.

    python -m ftlib_course.sandbox.kernel --guard SETTINGS -f CONNECTION_FILE [IPKernelApp options]

SETTINGS is JSON: {"fd": the evidence channel, "roots": folders cell code may read,
"output_limit": bytes per message}. The grader writes the channel's HMAC key into it before the
kernel starts; the kernel reads it, then only writes. The fork server calls `main` in each forked
kernel with the same arguments.
"""

from __future__ import annotations

import json
import os
import sys

from ftlib_course.sandbox import outputs

KEY_BYTES = 32


def main(argv: list[str] | None = None) -> None:
    """Start the kernel and serve until it is shut down."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "--guard":
        sys.exit("usage: python -m ftlib_course.sandbox.kernel --guard SETTINGS -f FILE ...")
    settings = json.loads(argv[1])
    key = _read_key(settings["fd"])

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    # No history file: the guard empties the history in memory, a file would keep the cells.
    app.initialize([*argv[2:], "--HistoryManager.enabled=False"])
    _enable_inline_figures()
    outputs.cap_kernel_messages(app.session, settings["output_limit"])
    _install_guard(app.shell, settings, key)
    app.start()


def _read_key(fd: int) -> bytes:
    key = b""
    while len(key) < KEY_BYTES:
        chunk = os.read(fd, KEY_BYTES - len(key))
        if not chunk:
            raise RuntimeError("the evidence channel closed before its key arrived")
        key += chunk
    return key


def _enable_inline_figures() -> None:
    # Where matplotlib's inline backend was imported before the shell existed (in the fork
    # server), it could not hook itself into the shell; it does now, as in a fresh kernel.
    backend = sys.modules.get("matplotlib_inline.backend_inline")
    if backend is not None:
        backend._enable_matplotlib_integration()


def _install_guard(shell, settings: dict, key: bytes) -> None:
    from ftlib_course.sandbox import guard

    guard.install(shell, fd=settings["fd"], key=key, allowed_roots=settings["roots"])
    # Cell code must not reach the modules whose functions the hook calls, to rebind them: the
    # hook keeps the only references. Importing one again makes a new, unconnected module.
    package = sys.modules["ftlib_course.sandbox"]
    for name in _GUARD_MODULES:
        sys.modules.pop(f"{package.__name__}.{name}", None)
        package.__dict__.pop(name, None)


_GUARD_MODULES = ("guard", "snapshot", "digests")


if __name__ == "__main__":
    main()
