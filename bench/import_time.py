"""Start-up cost of ftlib's common first uses, each in a fresh Python process.

A learner pays it in every kernel and the grader in every submission. For each snippet this
measures the wall time of the whole process (interpreter, torch and ftlib included), the time of
the snippet itself, and, from ``python -X importtime``, which heavy packages it imported and
their cumulative import time. ``--before REV`` measures the ftlib of an older commit beside the
working tree, from a copy made with ``git archive``.

    .venv/bin/python bench/import_time.py                      # this tree, 7 runs per snippet
    .venv/bin/python bench/import_time.py --before 9e147a4     # and ftlib as it was at 9e147a4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "import_time.json"
HEAVY = ("torch", "torchvision", "torch._dynamo", "timm", "transformers", "sklearn", "matplotlib")
SNIPPETS = {
    "import torch (the floor)": "import torch",
    "import ftlib": "import ftlib",
    "ftlib.prepare(a small model)": (
        "import ftlib\nfrom torch import nn\n"
        "ftlib.prepare(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), 'head', 2)"
    ),
    "ftlib.freeze(a small model)": (
        "import ftlib\nfrom torch import nn\nftlib.freeze(nn.Sequential(nn.Linear(4, 8)))"
    ),
    "from ftlib.data import digits_tasks": "from ftlib.data import digits_tasks",
    "README start (digits model, state 2)": (
        "import ftlib\nfrom ftlib.data import digits_tasks\n"
        "model = ftlib.load_pretrained('digits')\nftlib.prepare(model, 'head', num_classes=5)"
    ),
}
TIMER = (
    "import time as _t\n_start = _t.perf_counter()\n{code}\n"
    "import ftlib\nprint('SNIPPET', _t.perf_counter() - _start, ftlib.__file__)"
)


def measure(code: str, source: Path, runs: int) -> dict:
    """Median wall times over ``runs`` fresh processes and the heavy imports of one run."""
    # Run in the tree: `python -c` puts the working folder first on the path.
    env = {**os.environ, "PYTHONPATH": str(source)}
    walls, snippets = [], []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", TIMER.format(code=code)],
            env=env,
            cwd=source,
            capture_output=True,
            text=True,
            check=True,
        )
        walls.append(time.perf_counter() - start)
        seconds, imported = done.stdout.split("SNIPPET")[-1].split()
        assert Path(imported).is_relative_to(source), f"measured {imported}, not {source}"
        snippets.append(float(seconds))
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "process_seconds": round(statistics.median(walls), 3),
        "snippet_seconds": round(statistics.median(snippets), 3),
        "imports_ms": _heavy_imports(traced.stderr),
    }


def _heavy_imports(importtime: str) -> dict[str, float]:
    """Cumulative milliseconds of each heavy package that was imported (absent: not imported)."""
    found = {}
    for line in importtime.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in HEAVY and parts[1].isdigit():
            found[parts[2]] = round(int(parts[1]) / 1000, 1)
    return found


def checkout(rev: str, into: Path) -> Path:
    """The ``ftlib`` package of commit ``rev``, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "ftlib"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per snippet")
    parser.add_argument("--before", help="also measure ftlib as it was at this commit")
    args = parser.parse_args()
    trees = {"after": ROOT}
    with tempfile.TemporaryDirectory() as scratch:
        if args.before:
            trees = {"before": checkout(args.before, Path(scratch)), **trees}
        results = {
            name: {label: measure(code, tree, args.runs) for label, tree in trees.items()}
            for name, code in SNIPPETS.items()
        }
    for name, by_tree in results.items():
        cells = [
            f"{label} {row['process_seconds']:.2f} s (snippet {row['snippet_seconds']:.2f} s; "
            f"{', '.join(row['imports_ms']) or 'nothing heavy'})"
            for label, row in by_tree.items()
        ]
        print(f"{name:40s} " + " | ".join(cells))
    RESULTS.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "machine": describe_machine(),
                "runs": args.runs,
                "before": args.before,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
