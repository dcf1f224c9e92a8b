"""The lessons of the course and the parts of them that learners must never see.

A lesson is a folder `solutions/<name>/` holding `<name>.ipynb`, in nbgrader's source format:
solution code between `### BEGIN SOLUTION` / `### END SOLUTION`, hidden tests between
`### BEGIN HIDDEN TESTS` / `### END HIDDEN TESTS`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ftlib_course.config import ROOT

SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def lesson_names(root: Path = ROOT) -> list[str]:
    """Names of the lessons in `root / "solutions"`, in course order."""
    return sorted(
        folder.name
        for folder in (root / "solutions").iterdir()
        if (folder / f"{folder.name}.ipynb").is_file()
    )


def secret_lines(
    notebook: nbformat.NotebookNode, *regions: tuple[str, str], min_length: int = 20
) -> set[str]:
    """Lines that occur only inside the marked regions, so that finding one elsewhere is a leak.

    Why: a release or a feedback page must not contain solution code or hidden tests, but some of
    their lines (an import, a signature) also appear in the visible text and are no secret.

    Args:
        notebook: a lesson in nbgrader's source format.
        regions: (begin, end) marker pairs, e.g. `SOLUTION, HIDDEN_TESTS`.
        min_length: shorter lines (`return w`, `pass`) are too generic to count.

    Returns:
        Stripped lines inside any region that occur nowhere outside them, not even as part of a
        longer line, so that a substring search for them finds only leaks.
    """
    inside: set[str] = set()
    outside: set[str] = set()
    for cell in notebook.cells:
        end = None
        for line in cell.source.splitlines():
            begins = [pair[1] for pair in regions if pair[0] in line]
            if end is None and begins:
                end = begins[0]
            elif end is not None and end in line:
                end = None
            else:
                (outside if end is None else inside).add(line.strip())
    visible = "\n".join(outside)
    return {line for line in inside if len(line) >= min_length and line not in visible}


def points(notebook: nbformat.NotebookNode) -> float:
    """The autograded points of a lesson: the sum over its graded code cells."""
    return sum(
        cell.metadata.get("nbgrader", {}).get("points", 0)
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
    )
