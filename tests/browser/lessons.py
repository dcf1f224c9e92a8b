"""The lessons as the browser tests open them: released, or filled in with the solutions."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from ftlib_course.config import ROOT


def answer_cells(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """grade_id -> index of each autograded answer cell (a solution cell not graded by hand)."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: index
        for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("solution")
        and not cell.metadata["nbgrader"].get("grade")
    }


def filled_in(lesson: str) -> nbformat.NotebookNode:
    """The student version of `lesson` with every answer cell holding the solution's code."""
    release = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    solved, answers = answer_cells(solution), answer_cells(release)
    if answers.keys() != solved.keys():
        raise LookupError(
            f"the answer cells of lessons/{lesson} ({', '.join(answers)}) are not those of "
            f"solutions/{lesson} ({', '.join(solved)}): regenerate the student version with "
            f"`python3 course.py release {lesson}`"
        )
    for grade_id, index in answers.items():
        release.cells[index].source = solution.cells[solved[grade_id]].source
    return release


def copy_lesson(lesson: str, folder: Path, notebook: nbformat.NotebookNode | None = None) -> Path:
    """Copy lessons/<lesson>/ into `folder`, optionally with another notebook; returns its path."""
    target = folder / lesson
    shutil.copytree(ROOT / "lessons" / lesson, target)
    path = target / f"{lesson}.ipynb"
    if notebook is not None:
        nbformat.write(notebook, path)
    return path


def filled_in_copy(folder: Path, lesson: str) -> str:
    """Put `lesson` filled in with its solutions under `folder`/filled_in, once; returns its path
    relative to `folder` (its lab path, where `folder` is the lab's)."""
    path = folder / "filled_in" / lesson / f"{lesson}.ipynb"
    if not path.exists():
        copy_lesson(lesson, path.parents[1], filled_in(lesson))
    return path.relative_to(folder).as_posix()


def error_outputs(path: Path) -> list[str]:
    """'cell N: Name: message' for each error output in the notebook saved at `path`."""
    notebook = nbformat.read(path, as_version=4)
    return [
        f"cell {index}: {output.ename}: {output.evalue}"
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
