"""Every lesson grades as intended through the real nbgrader pipeline.

For each lesson in solutions/, in a temporary course with the repository's nbgrader_config.py:
generate the student version, hand in a notebook as a student, autograde it, read the gradebook.
The solution (typed into the student version, as a student would) must earn full marks (which
proves that every test cell passes on it), the untouched student version nothing, and a half-done
notebook (the first half of the exercises solved) something in between; none of them may be
flagged for review. The feedback for the half-done one must not show any hidden test.

A lesson without graded cells (a project) is only checked to run from top to bottom. A one-cell
probe lesson checks that feedback hides a failing hidden test, traceback included.
Autograde times are printed (`pytest -s`) and recorded as the test property `autograde_seconds`.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from submissions import half_done, solved
from tiny_lesson import one_exercise

from ftlib_course.config import ROOT, course_config
from ftlib_course.notebooks import HIDDEN_TESTS, lesson_names, secret_lines
from ftlib_course.review import flags_of

LESSONS = lesson_names()


@dataclass
class Score:
    score: float
    max_score: float
    failing: list[str]  # grade_ids of test cells that lost points
    seconds: float
    flags: list[str]  # what the autograder flagged for review


class Course:
    """A throwaway nbgrader course holding one lesson, graded in-process with NbGraderAPI.

    `root / "solutions" / lesson / f"{lesson}.ipynb"` must exist; the student version is generated.
    """

    def __init__(self, root: Path, lesson: str) -> None:
        self.root, self.lesson = root, lesson
        config = course_config(root)
        self.course_id = config.CourseDirectory.course_id
        self.api = NbGraderAPI(config=config)
        _check(self.api.generate_assignment(lesson), f"generate_assignment {lesson}")

    def notebook(self, folder: str) -> nbformat.NotebookNode:
        """The lesson notebook in solutions/, lessons/ (the release) or autograded/<student>/."""
        return nbformat.read(self._path(folder), as_version=4)

    def hand_in(self, student: str, notebook: nbformat.NotebookNode) -> Score:
        """Submit `notebook` as `student`, autograde it and read the score from the gradebook."""
        target = self._path(f"submitted/{student}")
        target.parent.mkdir(parents=True)
        nbformat.write(notebook, target)
        start = time.perf_counter()
        _check(self.api.autograde(self.lesson, student), f"autograde {self.lesson} {student}")
        seconds = time.perf_counter() - start
        print(f"{self.lesson}: autograde of {student!r} took {seconds:.1f} s")
        with Gradebook(self.api.coursedir.db_url, self.course_id) as gradebook:
            submission = gradebook.find_submission(self.lesson, student)
            failing = [
                grade.name
                for notebook_grades in submission.notebooks
                for grade in notebook_grades.grades
                if grade.score < grade.max_score
            ]
            flags = [flag.describe() for flag in flags_of(self.notebook(f"autograded/{student}"))]
            return Score(submission.score, submission.max_score, sorted(failing), seconds, flags)

    def feedback_html(self, student: str) -> str:
        _check(self.api.generate_feedback(self.lesson, student), f"generate_feedback {student}")
        return self._path(f"feedback/{student}").with_suffix(".html").read_text()

    def _path(self, folder: str) -> Path:
        folder = {"solutions": "solutions", "release": "lessons"}.get(folder, folder)
        return self.root / folder / self.lesson / f"{self.lesson}.ipynb"


def _check(result: dict, what: str) -> None:
    # NbGraderAPI never raises: it reports failure in the result.
    assert result["success"], f"{what} failed:\n{result.get('error')}\n{result.get('log')}"


def _errors(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        f"cell {index}: {output.ename}: {output.evalue}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


@pytest.fixture(autouse=True)
def _alembic_on_path(monkeypatch) -> None:
    # nbgrader runs the `alembic` command to create a gradebook: it must be on PATH even when the
    # environment is not activated.
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """lesson -> a course folder where it has been generated, made once per lesson and worker.

    Creating a gradebook takes seconds (nbgrader runs `alembic`); copying one takes none.
    """
    folders: dict[str, Path] = {}

    def folder(lesson: str) -> Path:
        if lesson not in folders:
            root = tmp_path_factory.mktemp(lesson)
            shutil.copytree(ROOT / "solutions" / lesson, root / "solutions" / lesson)
            Course(root, lesson)
            folders[lesson] = root
        return folders[lesson]

    return folder


@pytest.fixture(params=LESSONS)
def course(request, tmp_path: Path, generated) -> Course:
    shutil.copytree(generated(request.param), tmp_path, dirs_exist_ok=True)
    return Course(tmp_path, request.param)


def _skip_without_grades(score: Score) -> None:
    if score.max_score == 0:
        pytest.skip("lesson has no autograded cells")


def test_solution_runs_top_to_bottom_and_earns_full_marks(course: Course, record_property):
    score = course.hand_in(
        "solution", solved(course.notebook("release"), course.notebook("solutions"))
    )
    record_property("autograde_seconds", round(score.seconds, 1))
    errors = _errors(course.notebook("autograded/solution"))
    assert not errors, "the solution notebook raised errors:\n" + "\n".join(errors)
    assert score.failing == [], f"test cells failing on the solution: {score.failing}"
    assert score.flags == [], f"the solution was flagged: {score.flags}"
    assert score.score == score.max_score


def test_untouched_release_scores_zero(course: Course, record_property):
    score = course.hand_in("untouched", course.notebook("release"))
    record_property("autograde_seconds", round(score.seconds, 1))
    assert score.flags == [], f"the untouched release was flagged: {score.flags}"
    _skip_without_grades(score)
    assert score.score == 0, f"an empty submission earned {score.score} of {score.max_score}"


def test_half_done_scores_partially_and_feedback_hides_hidden_tests(
    course: Course, record_property
):
    notebook = half_done(course.notebook("release"), course.notebook("solutions"))
    score = course.hand_in("half", notebook)
    record_property("autograde_seconds", round(score.seconds, 1))
    assert score.flags == [], f"the half-done notebook was flagged: {score.flags}"
    _skip_without_grades(score)
    assert 0 < score.score < score.max_score, (
        f"half-done score {score.score} of {score.max_score}; failing: {score.failing}"
    )
    text = _visible_text(course.feedback_html("half"))
    hidden = secret_lines(course.notebook("solutions"), HIDDEN_TESTS)
    leaked = [line for line in hidden if line in text]
    assert "HIDDEN TESTS" not in text
    assert not leaked, f"feedback shows hidden test lines: {leaked[:3]}"


def _visible_text(page: str) -> str:
    # Highlighted code is split into many <span>s: compare against the text without tags.
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _probe_lesson(answer: str) -> nbformat.NotebookNode:
    """A one-exercise lesson: write `double(x)`; the hidden test catches `return 2`."""
    return one_exercise(
        f"def double(x):\n    ### BEGIN SOLUTION\n    {answer}\n    ### END SOLUTION",
        '"""double: doubles its argument."""\n'
        'assert double(1) == 2, "double(1) should be 2"\n'
        "### BEGIN HIDDEN TESTS\n"
        'assert double(21) == 42, "double(21) should be 42"\n'
        "### END HIDDEN TESTS",
        name="double",
    )


def test_feedback_shows_the_message_of_a_failing_hidden_test_but_not_its_code(tmp_path: Path):
    lesson = "00_probe"
    source = tmp_path / "solutions" / lesson / f"{lesson}.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(_probe_lesson("return 2 * x"), source)
    course = Course(tmp_path, lesson)
    gamed = nbformat.from_dict(course.notebook("release"))
    gamed.cells[0].source = "def double(x):\n    return 2"
    score = course.hand_in("gamer", gamed)
    assert (score.score, score.max_score) == (0, 1), "the hidden test should catch `return 2`"
    text = _visible_text(course.feedback_html("gamer"))
    assert "double(21) should be 42" in text, "the hint (the error message) should be shown"
    assert "assert double(21)" not in text and "HIDDEN TESTS" not in text
