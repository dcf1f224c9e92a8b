"""A throwaway nbgrader course for tests of the grading kernel: real nbgrader, real gradebook.

`GradingCourse(root, source)` generates the lesson `tiny` from a source notebook (built with the
cell helpers below) and grades submissions in-process with the course's own configuration, so
every kernel is the sandboxed one unless the test says otherwise.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.utils import determine_grade

from ftlib_course.config import course_config
from ftlib_course.sandbox import sandbox_problem
from ftlib_course.sandbox.execute import METADATA_KEY

LESSON = "tiny"


def needs_sandbox() -> None:
    """Skip the calling test, with the reason and the fix, where no sandbox can be made."""
    problem = sandbox_problem()
    if problem:
        pytest.skip(f"no grading sandbox here: {problem}")


def _cell(source: str, *, name: str, grade: bool, solution: bool, locked: bool, **extra):
    cell = new_code_cell(source)
    cell.metadata.nbgrader = {
        "schema_version": 3,
        "grade": grade,
        "solution": solution,
        "locked": locked,
        "grade_id": name,
        **extra,
    }
    return cell


def answer_cell(source: str, name: str = "answer"):
    """An answer cell (what the student writes)."""
    return _cell(source, name=name, grade=False, solution=True, locked=False)


def graded_cell(source: str, name: str = "test_answer", points: int = 1):
    """An autograded test cell worth `points`."""
    return _cell(source, name=name, grade=True, solution=False, locked=True, points=points)


def read_only_cell(source: str, name: str, *, tags: tuple[str, ...] = ()):
    """A locked cell the student cannot change, e.g. setup or an experiment."""
    cell = _cell(source, name=name, grade=False, solution=False, locked=True)
    cell.metadata.tags = list(tags)
    return cell


def lesson(*cells) -> nbformat.NotebookNode:
    notebook = new_notebook(cells=list(cells))
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3"}
    return notebook


@dataclass
class Graded:
    score: float
    max_score: float
    scores: dict[str, float]  # test cell -> the score its outputs earn (before any review hold)
    notebook: nbformat.NotebookNode  # the autograded notebook

    @property
    def grading(self) -> dict:
        return self.notebook.metadata[METADATA_KEY]

    @property
    def evidence_kinds(self) -> set[str]:
        return {item["kind"] for item in self.grading["evidence"]}

    def text(self, index: int) -> str:
        """Everything cell `index` printed."""
        return "".join(out.get("text", "") for out in self.notebook.cells[index].outputs)


class GradingCourse:
    """A course root holding one lesson, generated from `source`, with extra lesson `files`."""

    def __init__(
        self,
        root: Path,
        source: nbformat.NotebookNode,
        *,
        files: dict[str, str] | None = None,
        **config,
    ) -> None:
        self.root = root
        folder = root / "solutions" / LESSON
        folder.mkdir(parents=True)
        nbformat.write(source, folder / f"{LESSON}.ipynb")
        for name, text in (files or {}).items():
            (folder / name).write_text(text)
        settings = course_config(root)
        for name, value in config.items():
            setattr(settings.SandboxedExecute, name, value)
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        self.api = NbGraderAPI(config=settings)
        _check(self.api.generate_assignment(LESSON), "generate_assignment")

    def release(self) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "lessons" / LESSON / f"{LESSON}.ipynb", as_version=4)

    def submission(self, *answers: str) -> nbformat.NotebookNode:
        """The release with its answer cells, in order, set to `answers`."""
        notebook = self.release()
        cells = [
            cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")
        ]
        for cell, source in zip(cells, answers, strict=True):
            cell.source = source
        return notebook

    def grade(self, student: str, notebook: nbformat.NotebookNode) -> Graded:
        folder = self.root / "submitted" / student / LESSON
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / f"{LESSON}.ipynb")
        _check(self.api.autograde(LESSON, student, force=True), f"autograde {student}")
        with Gradebook(self.api.coursedir.db_url, self.api.coursedir.course_id) as gradebook:
            submission = gradebook.find_submission(LESSON, student)
            score, max_score = submission.score, submission.max_score
        path = self.root / "autograded" / student / LESSON / f"{LESSON}.ipynb"
        graded = nbformat.read(path, as_version=4)
        scores = {
            cell.metadata.nbgrader["grade_id"]: determine_grade(cell)[0]
            for cell in graded.cells
            if cell.metadata.get("nbgrader", {}).get("grade")
        }
        return Graded(score, max_score, scores, graded)


def _check(result: dict, what: str) -> None:
    assert result["success"], f"{what} failed:\n{result.get('error')}\n{result.get('log')}"
