"""Grading a class: set-up on a fresh clone, parallel workers, bad input, flags and holds, feedback,
and `course.py place`, which puts received notebooks where grading finds them.

One small probe lesson (a locked setup cell, an answer, a test with a hidden part) keeps this
fast; one class run grades every kind of submission at once, with two workers on one gradebook.
The hostile corpus on the real lessons is in test_hostile_submissions.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from nbgrader.api import Gradebook
from tiny_lesson import one_exercise

from ftlib_course import autograde
from ftlib_course.autograde import GradingError, grade_class
from ftlib_course.config import ROOT, course_config
from ftlib_course.feedback import write_feedback
from ftlib_course.sandbox import sandbox_problem

LESSON = "00_probe"
CORRECT = "def double(x):\n    return x + x"
SANDBOX = sandbox_problem() is None  # grade in the sandbox where one can be made


def _probe_source() -> nbformat.NotebookNode:
    notebook = one_exercise(
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        '"""double: doubles floats."""\n'
        'assert abs(double(0.5) - FACTOR * 0.5) < 1e-12, "double(0.5) should be 1.0"\n'
        "### BEGIN HIDDEN TESTS\n"
        'assert abs(double(21.0) - 42.0) < 1e-12, "double(21.0) should be 42.0"\n'
        "### END HIDDEN TESTS",
        name="double",
    )
    setup = new_code_cell("import math\n\nFACTOR = 2.0")
    setup.metadata.nbgrader = {
        "schema_version": 3,
        "grade": False,
        "solution": False,
        "locked": True,
        "grade_id": "setup",
    }
    notebook.cells.insert(0, setup)
    return notebook


@pytest.fixture(scope="module", autouse=True)
def _alembic_on_path():
    # nbgrader runs the `alembic` command to create a gradebook.
    bin_dir = str(Path(sys.executable).parent)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
        yield


def _fresh_course(root: Path) -> Path:
    """A fresh course: solutions/ only, no gradebook, no lessons/ (as in a new clone)."""
    source = root / "solutions" / LESSON / f"{LESSON}.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(_probe_source(), source)
    return root


@pytest.fixture
def course(tmp_path: Path) -> Path:
    return _fresh_course(tmp_path)


def _release(root: Path) -> nbformat.NotebookNode:
    """The student version, made the way nbgrader makes it (in a throwaway course)."""
    from nbgrader.apps import NbGraderAPI

    scratch = root / ".release"
    released = scratch / "lessons" / LESSON / f"{LESSON}.ipynb"
    if not released.exists():
        (scratch / "solutions").mkdir(parents=True)
        (scratch / "solutions" / LESSON).symlink_to(root / "solutions" / LESSON)
        assert NbGraderAPI(config=course_config(scratch)).generate_assignment(LESSON)["success"]
    return nbformat.read(released, as_version=4)


def _hand_in(root: Path, student: str, notebook: nbformat.NotebookNode, name: str = LESSON):
    target = root / "submitted" / student / LESSON / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def _with_answer(release: nbformat.NotebookNode, answer: str, *, drop=(), add=()):
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "double":
            cell.source = answer
    notebook.cells = [
        cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id") not in drop
    ]
    notebook.cells += [new_code_cell(source) for source in add]
    return notebook


def _grades(root: Path, student: str) -> dict:
    config = course_config(root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", config.CourseDirectory.course_id) as book:
        submission = book.find_submission_notebook(LESSON, LESSON, student)
        return {
            "score": submission.score,
            "flagged": submission.flagged,
            "needs_manual_grade": [grade.needs_manual_grade for grade in submission.grades],
            "extra_credit": [grade.extra_credit for grade in submission.grades],
            "comments": [comment.auto_comment for comment in submission.comments],
        }


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """One class run over every kind of submission, with two workers; (root, outcomes, said)."""
    course = _fresh_course(tmp_path_factory.mktemp("class"))
    release = _release(course)
    forged = _with_answer(release, CORRECT)
    forged.metadata["ftlib_grading"] = {"mode": "sandbox", "evidence": []}
    forged.metadata["ftlib_review"] = {"flags": [], "held": False}
    copied = _with_answer(release, CORRECT)
    pasted = nbformat.from_dict(copied.cells[-1])  # the test cell, pasted early
    pasted.id = "pasted-test"
    copied.cells.insert(1, pasted)
    submissions = {
        "right": _with_answer(release, CORRECT),
        "wrong": _with_answer(release, "def double(x):\n    return x"),
        "untouched": release,
        "tamper": _with_answer(release, CORRECT + "\n\nabs = lambda value: 0.0"),
        "tamper_then_clean": _with_answer(release, CORRECT + "\n\nabs = lambda value: 0.0"),
        "marker": _with_answer(release, CORRECT + "\n# ### BEGIN HIDDEN TESTS"),
        "no_test": _with_answer(release, CORRECT, drop=["test_double"]),
        "no_setup": _with_answer(release, CORRECT, drop=["setup"]),
        "copied": copied,
        "forged": forged,
    }
    for student, notebook in submissions.items():
        _hand_in(course, student, notebook)
    _hand_in(course, "renamed", release, name="my_work")
    (course / "submitted" / "empty" / LESSON).mkdir(parents=True)
    said: list[str] = []
    outcomes = grade_class(LESSON, root=course, jobs=2, sandbox=SANDBOX, say=said.append)
    return course, {outcome.student: outcome for outcome in outcomes}, said


def test_a_fresh_course_is_set_up_from_solutions_without_touching_lessons(graded_class):
    root, outcomes, said = graded_class
    assert said == [
        f"{LESSON} was not in the gradebook: added it from solutions/ (lessons/ unchanged)"
    ]
    assert not (root / "lessons").exists()
    assert (outcomes["right"].score, outcomes["right"].max_score) == (1, 1)
    assert (outcomes["wrong"].score, outcomes["untouched"].score) == (0, 0)
    assert not outcomes["right"].flags and not outcomes["wrong"].flags


def test_submissions_that_cannot_be_graded_say_why_and_the_others_are_graded(graded_class):
    _, outcomes, _ = graded_class
    assert "holds my_work.ipynb" in outcomes["renamed"].error
    assert f"course.py place {LESSON} renamed" in outcomes["renamed"].error
    assert "holds no notebook" in outcomes["empty"].error
    graded = [student for student, outcome in outcomes.items() if not outcome.error]
    assert len(graded) == 10


def test_tampering_holds_the_score_with_the_withheld_score_in_the_comment(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["tamper"].held and outcomes["tamper"].score == 0
    assert "static:rebinding" in [flag.kind for flag in outcomes["tamper"].flags]
    grades = _grades(root, "tamper")
    assert grades["flagged"] and all(grades["needs_manual_grade"])
    (comment,) = grades["comments"]
    assert "the automatic score 1 of 1 is withheld" in comment
    assert "rebinds 'abs'" in comment and "test_double 1/1" in comment


def test_a_clean_regrade_lifts_the_hold(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["tamper_then_clean"].held
    _hand_in(root, "tamper_then_clean", _with_answer(_release(root), CORRECT))
    (outcome,) = grade_class(
        LESSON, root=root, students=["tamper_then_clean"], jobs=1, sandbox=SANDBOX
    )
    assert (outcome.score, outcome.flags) == (1, [])
    grades = _grades(root, "tamper_then_clean")
    assert not grades["flagged"] and grades["comments"] == [None]
    assert not any(grades["needs_manual_grade"])


def test_deleted_locked_cells_are_restored_and_flagged_without_a_hold(graded_class):
    root, outcomes, _ = graded_class
    for student, grade_id in [("no_test", "test_double"), ("no_setup", "setup")]:
        outcome = outcomes[student]
        assert outcome.score == 1, f"{student}: the restored cells should grade the answer"
        assert [flag.kind for flag in outcome.flags] == ["restored"]
        assert grade_id in outcome.flags[0].detail and not outcome.held
        assert _grades(root, student)["flagged"]
        assert "flagged for review (score kept)" in _grades(root, student)["comments"][0]


def test_a_pasted_copy_of_a_test_cell_grades_instead_of_failing(graded_class):
    _, outcomes, _ = graded_class
    assert outcomes["copied"].score == 1
    assert {flag.kind for flag in outcomes["copied"].flags} >= {"duplicated"}


def test_grading_records_written_by_the_student_are_dropped(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["forged"].score == 1 and not outcomes["forged"].held
    assert [flag.kind for flag in outcomes["forged"].flags] == ["forged"]
    graded = nbformat.read(root / "autograded/forged" / LESSON / f"{LESSON}.ipynb", as_version=4)
    record = graded.metadata["ftlib_grading"]
    assert record["mode"] == outcomes["right"].mode and "skipped" in record, "the grader's own"
    assert (
        graded.metadata["ftlib_review"]["held"] is False
        and "submission" in graded.metadata["ftlib_review"]
    )
    assert _grades(root, "forged")["extra_credit"] == [None]


def test_feedback_waits_for_flagged_work_and_survives_marker_text(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["marker"].held
    status = write_feedback(LESSON, root)
    assert status["right"] == "written" and status["marker"] == "waiting for review"
    config = course_config(root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", config.CourseDirectory.course_id) as book:
        book.find_submission_notebook(LESSON, LESSON, "marker").flagged = False  # reviewed
        book.db.commit()
    assert write_feedback(LESSON, root)["marker"] == "written"
    page = (root / "feedback/marker" / LESSON / f"{LESSON}.html").read_text()
    assert "BEGIN HIDDEN TESTS" in page, "the student's own text is shown as written"
    assert "double(21.0) should be 42.0" not in page, "the hidden test stays hidden"


def test_unknown_lesson_no_submissions_and_unknown_students_are_refused(course: Path):
    with pytest.raises(GradingError, match=f"unknown lesson '01_warm_stat'.*{LESSON}"):
        grade_class("01_warm_stat", root=course, sandbox=SANDBOX)
    with pytest.raises(GradingError, match="no submissions of 00_probe.*course.py place"):
        grade_class(LESSON, root=course, sandbox=SANDBOX)
    _hand_in(course, "ada", _probe_source())
    with pytest.raises(GradingError, match="no submission of 00_probe by bob.*ada"):
        grade_class(LESSON, root=course, students=["bob"], sandbox=SANDBOX)


def test_the_command_exits_2_on_bad_input_and_1_when_a_submission_fails(course: Path, capsys):
    args = ["--root", str(course), "--no-sandbox"]
    assert autograde.main([LESSON, *args]) == 2
    assert "no submissions of 00_probe" in capsys.readouterr().err
    _hand_in(course, "ada", _with_answer(_release(course), CORRECT))
    (course / "submitted" / "bob" / LESSON).mkdir(parents=True)
    assert autograde.main([LESSON, *args, "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "student  score  max  flags" in out and "bob not graded" in out
    assert "Graded WITHOUT a sandbox" in out
    with pytest.raises(SystemExit):
        autograde.main([LESSON, *args, "--jobs", "0"])


def test_the_command_refuses_to_grade_without_a_sandbox_and_names_the_way_out(course: Path):
    _hand_in(course, "ada", _probe_source())
    run = subprocess.run(
        [sys.executable, "-m", "ftlib_course.autograde", LESSON, "--root", str(course)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},  # no bwrap on PATH
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot grade in a sandbox" in run.stderr and "bubblewrap" in run.stderr
    assert "--no-sandbox" in run.stderr
    assert not (course / "autograded").exists()


@pytest.fixture
def course_script(monkeypatch, course: Path):
    """course.py imported as a module, with its course root moved to `course`."""
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", course)
    return module


def test_place_puts_a_notebook_where_autograde_finds_it_and_says_so(course_script, course, capsys):
    received = course / "from_mail.ipynb"
    nbformat.write(_probe_source(), received)
    course_script.place([LESSON, "ada.lovelace", str(received)])
    course_script.place([LESSON, "ada.lovelace", str(received)])
    placed = course / "submitted" / "ada.lovelace" / LESSON / f"{LESSON}.ipynb"
    assert placed.read_bytes() == received.read_bytes()
    assert "(replacing the earlier one)" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize(
    ("student", "content", "message"),
    [
        ("../bob", None, "invalid student id '../bob'"),
        (".hidden", None, "invalid student id '.hidden'"),
        ("bob", b"not json", "is not a Jupyter notebook"),
        ("bob", b'{"metadata": {}}', "is not a Jupyter notebook"),
    ],
)
def test_place_refuses_bad_ids_and_files_that_are_not_notebooks(
    course_script, course, student, content, message
):
    received = course / "received.ipynb"
    if content is None:
        nbformat.write(_probe_source(), received)
    else:
        received.write_bytes(content)
    with pytest.raises(SystemExit, match=re.escape(message)):
        course_script.place([LESSON, student, str(received)])
    assert not (course / "submitted").exists()
