"""Submissions built from a lesson's release, as students would hand them in, for grading tests."""

from __future__ import annotations

import nbformat

from ftlib_course.notebooks import SOLUTION


def answers(solution: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the solution's code of each answer cell, without nbgrader's markers.

    That is what a student who found the solution types: the markers exist only in solutions/.
    """
    return {
        cell.metadata["nbgrader"]["grade_id"]: "\n".join(
            line for line in cell.source.splitlines() if not any(m in line for m in SOLUTION)
        )
        for cell in solution.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
        and not cell.metadata["nbgrader"].get("grade")
    }


def solved(
    release: nbformat.NotebookNode, solution: nbformat.NotebookNode, count: int | None = None
) -> nbformat.NotebookNode:
    """The release with its first `count` answer cells (all when None) holding the solution."""
    correct = answers(solution)
    notebook = nbformat.from_dict(release)
    cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") in correct]
    for cell in cells[:count]:
        cell.source = correct[cell.metadata["nbgrader"]["grade_id"]]
    return notebook


def half_done(
    release: nbformat.NotebookNode, solution: nbformat.NotebookNode
) -> nbformat.NotebookNode:
    """The release with the first half of its answer cells (at least one) solved."""
    return solved(release, solution, max(1, len(answers(solution)) // 2))


def as_graded(
    notebook: nbformat.NotebookNode, solution: nbformat.NotebookNode
) -> nbformat.NotebookNode:
    """`notebook` with its locked cells as nbgrader restores them for grading (hidden tests in)."""
    locked = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in solution.cells
        if cell.metadata.get("nbgrader", {}).get("locked")
    }
    graded = nbformat.from_dict(notebook)
    for cell in graded.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in locked:
            cell.source = locked[grade_id]
    return graded
