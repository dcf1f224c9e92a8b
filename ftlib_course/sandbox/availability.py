"""Whether a grading sandbox can be made on this machine, and if not, what to do about it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache

_PROBE = [
    "bwrap",
    "--unshare-user",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--cap-add",
    "ALL",
    "--ro-bind",
    "/",
    "/",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "true",
]


@cache
def sandbox_problem() -> str | None:
    """None when grading kernels can be sandboxed here, else a one-line reason and the fix."""
    fallback = "or grade trusted work with --no-sandbox"
    if sys.platform != "linux":
        return f"the grading sandbox needs Linux with bubblewrap; {fallback}"
    if shutil.which("bwrap") is None:
        return f"bubblewrap is not installed: run `apt-get install bubblewrap` as root, {fallback}"
    if os.geteuid() != 0:
        return (
            "the grading sandbox needs root (it gives each kernel its own mounts, then drops "
            f"every privilege): run the grading as root, {fallback}"
        )
    probe = subprocess.run(_PROBE, capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bubblewrap cannot create namespaces here ({reason}); {fallback}"
    return None
