"""Check a lesson notebook the way the grader will: `python -m ftlib_course.validate NOTEBOOK`.

It runs the notebook from top to bottom with the course's nbgrader settings and lists every test
that fails. Unlike `nbgrader validate`, which exits 0 even when tests fail (jupyter/nbgrader#1908),
it exits 1 on failure, so scripts and CI can rely on it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from nbgrader.preprocessors import CheckCellMetadata, ClearOutput
from nbgrader.validator import Validator
from traitlets import List

from ftlib_course.config import course_config
from ftlib_course.sandbox import GradingExecute

_SOURCE_LINES_SHOWN = 6
_ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


class CourseValidator(Validator):
    """nbgrader's Validator, executing as the grader does: skipping the cells the notebook marks
    `grading-skip` (its own marks: nothing is at stake in a self-check), cutting runaway output,
    and still reporting the tests when the kernel dies."""

    preprocessors = List([CheckCellMetadata, ClearOutput, GradingExecute])


def validate(notebook: str | Path) -> dict[str, list[dict[str, str]]]:
    """Run `notebook` as the autograder would and return nbgrader's findings.

    Returns:
        {} when every test passes; otherwise one or more of "failed" (test cells that raised,
        each with "source" and "raw_error"), "changed" (locked cells whose text was edited) and
        "type_changed" (cells turned into another kind).

    Raises:
        FileNotFoundError: if `notebook` does not exist.
    """
    path = Path(notebook).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    return CourseValidator(config=course_config()).validate(str(path))


def report(results: dict[str, list[dict[str, str]]]) -> str:
    """Readable text for the result of `validate`."""
    if not results:
        return "OK: every test in the notebook passes."
    sections = {
        "type_changed": "cell(s) changed type; undo that (Edit > Undo, or copy your work into "
        "a fresh copy of the lesson)",
        "changed": "read-only cell(s) were edited; the grader restores them, so your edits "
        "there will not count",
        "failed": "test cell(s) fail",
    }
    lines = []
    for key, headline in sections.items():
        cells = results.get(key, [])
        if not cells:
            continue
        lines.append(f"FAILED: {len(cells)} {headline}.")
        for number, cell in enumerate(cells, start=1):
            source = cell["source"].splitlines()
            shown = source[:_SOURCE_LINES_SHOWN]
            if len(source) > _SOURCE_LINES_SHOWN:
                shown.append("...")
            lines.append(f"\n--- {number}. cell starting:")
            lines.extend(f"    {line}" for line in shown)
            if cell.get("raw_error"):
                lines.append("  error:")
                lines.extend(f"    {line}" for line in cell["raw_error"].strip().splitlines())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 pass, 1 fail, 2 no such file)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="e.g. lessons/01_warm_start/01_warm_start.ipynb")
    args = parser.parse_args(argv)
    try:
        results = validate(args.notebook)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    text = report(results)
    # Tracebacks come coloured for a terminal; plain text for a file or a pipe.
    print(text if sys.stdout.isatty() else _ANSI_COLOURS.sub("", text))
    return 1 if results else 0


if __name__ == "__main__":
    sys.exit(main())
