"""What the fork server imports before it forks kernels: a base that every lesson and the grading
kernel need, and the modules the lesson's own notebook imports.

An import done here is done once per grading run instead of once per submission. The base holds
what must be imported before any student code runs: torchvision, for one, imports torch's
compiler, which loads libraries with ctypes and wraps `torch.manual_seed`, what the kernel's
guard would report as tampering if it happened in a cell. The lesson's modules (its parts of
ftlib, say) only save time: a kernel imports them itself otherwise. They come from the course's
source notebook, never from a submission.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

BASE = [
    "numpy",
    "scipy.stats",  # the guard watches its functions, and those of statistics
    "statistics",
    "torch",
    "torch.nn.functional",
    "torch.utils.data",
    "torchvision",
    "torchvision.transforms",
    "matplotlib.pyplot",
    "matplotlib_inline.backend_inline",
    "sklearn",  # ftlib's digits loader imports it inside a function, where no scan sees it
    "sklearn.datasets",
    "PIL.Image",
    "tqdm.auto",
    "IPython",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "ftlib",
    "ftlib_course.checks",
    "ftlib_course.sandbox.guard",
]

_IMPORT = re.compile(r"^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)")
_FROM = re.compile(r"^\s*from\s+(\w[\w.]*)\s+import\b")


def notebook_imports(path: Path) -> list[str]:
    """The modules the code cells of the notebook at `path` import, in order of first use;
    none where there is no such notebook."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    found: dict[str, None] = {}
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for line in (source if isinstance(source, str) else "".join(source)).splitlines():
            found.update(dict.fromkeys(_imported(line)))
    return list(found)


def _imported(line: str) -> list[str]:
    if match := _FROM.match(line):
        return [match.group(1)]
    if match := _IMPORT.match(line):
        return [part.split()[0] for part in match.group(1).split(",")]
    return []
