"""Benchmark: how long each lesson takes to run from top to bottom, and how many points it holds.

Every lesson must run in under a minute on a 2-core CPU. This script executes each solution
notebook in a fresh `python3` kernel, one lesson at a time (run nothing else meanwhile), and
writes the wall time, the points and the machine to bench/results/lesson_times.json. The README's
lesson table quotes these times; tests/test_readme.py checks that it does.

    .venv/bin/python bench/lesson_times.py                    # every lesson, about 2 minutes
    .venv/bin/python bench/lesson_times.py 03_fine_tune       # one lesson (merged into the file)
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from machine import describe_machine, write_results
from nbclient import NotebookClient

from ftlib_course.config import ROOT
from ftlib_course.notebooks import lesson_names, points

RESULTS = Path(__file__).parent / "results" / "lesson_times.json"
CELL_TIMEOUT_SECONDS = 600


def run_lesson(lesson: str) -> float:
    """Execute solutions/<lesson> in a scratch copy of its folder; return the wall time (s)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / lesson
        shutil.copytree(ROOT / "solutions" / lesson, folder)
        notebook = nbformat.read(folder / f"{lesson}.ipynb", as_version=4)
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
        )
        start = time.perf_counter()
        client.execute()  # raises CellExecutionError if a cell fails
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson folder names (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    known = lesson_names()
    unknown = sorted(set(args.lessons) - set(known))
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}; the lessons are: {', '.join(known)}")

    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    lessons = previous.get("lessons", {})
    print(f"{'lesson':<18}{'seconds':>9}{'points':>8}")
    for lesson in args.lessons or known:
        seconds = run_lesson(lesson)
        notebook = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
        lessons[lesson] = {"seconds": round(seconds, 1), "points": points(notebook)}
        print(f"{lesson:<18}{seconds:>9.1f}{lessons[lesson]['points']:>8g}", flush=True)

    results = {
        "benchmark": "lesson_times",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "setup": "solution notebooks, one at a time, each in a fresh python3 kernel "
        "(the lessons set one torch thread themselves)",
        "lessons": {name: lessons[name] for name in known if name in lessons},
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
