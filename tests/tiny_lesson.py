"""One-exercise nbgrader notebooks for tests of the grading machinery (not of a lesson)."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook


def one_exercise(answer: str, test: str, *, name: str = "answer") -> nbformat.NotebookNode:
    """A notebook in nbgrader's source format: an answer cell `name` and its 1-point test cell."""
    answer_cell = new_code_cell(answer)
    answer_cell.metadata.nbgrader = {
        "schema_version": 3,
        "grade": False,
        "solution": True,
        "locked": False,
        "grade_id": name,
    }
    test_cell = new_code_cell(test)
    test_cell.metadata.nbgrader = {
        "schema_version": 3,
        "grade": True,
        "solution": False,
        "locked": True,
        "grade_id": f"test_{name}",
        "points": 1,
    }
    notebook = new_notebook(cells=[answer_cell, test_cell])
    notebook.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook
