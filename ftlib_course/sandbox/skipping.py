"""Cells that grading may skip: a lesson's experiments that no test needs.

A lesson marks such a cell in `solutions/` with the tag `grading-skip`; it must be an nbgrader
read-only cell (`locked: true`, `grade: false`, `solution: false`, with a `grade_id`), so that
the grader restores its text from the gradebook. The grader skips a cell only when its grade_id
is in the list read from a trusted notebook and its text is that notebook's text, never because
of a tag in the submission, which a student controls.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode, from_dict

SKIP_TAG = "grading-skip"

SKIPPED_TEXT = (
    "This cell was skipped while grading: it shows an experiment that no test needs. "
    "Run it yourself to see its output.\n"
)


def skippable_cells(notebook: NotebookNode) -> dict[str, str]:
    """grade_id -> source of the read-only code cells of `notebook` tagged `grading-skip`."""
    found = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        read_only = meta.get("locked") and not meta.get("grade") and not meta.get("solution")
        if (
            cell.cell_type == "code"
            and SKIP_TAG in cell.metadata.get("tags", [])
            and read_only
            and meta.get("grade_id")
        ):
            found[meta["grade_id"]] = cell.source
    return found


def skippable_cells_of(path: Path) -> dict[str, str]:
    """`skippable_cells` of the notebook at `path`, or {} if there is none."""
    if not path.is_file():
        return {}
    return skippable_cells(nbformat.read(path, as_version=4))


def should_skip(cell: NotebookNode, trusted: dict[str, str]) -> bool:
    """Whether `cell` is one of the `trusted` cells, text included."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return cell.cell_type == "code" and grade_id in trusted and cell.source == trusted[grade_id]


def skipped_output() -> NotebookNode:
    """The output a skipped cell gets in place of its own."""
    return from_dict({"output_type": "stream", "name": "stdout", "text": SKIPPED_TEXT})
